"""Turn stored measurements into calibrated scores, and scores into the ranked table and CSV."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from iqc_dagster.core import features as feat
from iqc_dagster.core import fusion, names
from iqc_dagster.core.files import write_atomic

#: The seed's CSV columns, in order; more follow them.
CSV_COLUMNS = ["file", "path", "final_score", "aesthetic", "sharpness_norm", "exposure_norm",
               "contrast_norm", "face_present", "rank"]


def csv_path(output_dir: str | os.PathLike, album: str) -> Path:
    """``<output_dir>/csvs/<album stem>.csv``: where an album's ranked CSV is written."""
    return Path(output_dir) / "csvs" / f"{names.file_stem(album)}.csv"


def skipped_csv_path(ranked_csv: str | os.PathLike) -> Path:
    """``<stem>_skipped.csv`` beside a ranked CSV: the album's unreadable files and their reasons."""
    p = Path(ranked_csv)
    return p.with_name(f"{p.stem}_skipped.csv")


def normalized_rows(album: str, features_long: pd.DataFrame) -> pd.DataFrame:
    """Long rows (album, path, content_hash, score, value) of calibrated [0, 1] scores per photo."""
    rows = []
    for (path, chash), grp in features_long.groupby(["path", "content_hash"], sort=True):
        measures = dict(zip(grp["feature"], grp["measures"]))
        for col, val in feat.score_photo(measures).items():
            rows.append((album, path, chash, col, None if math.isnan(val) else val))
        for name, m in measures.items():  # raw measurements travel too, for reasons and reports
            for k, v in m.items():
                rows.append((album, path, chash, f"raw.{name}.{k}", float(v)))
    return pd.DataFrame(rows, columns=["album", "path", "content_hash", "score", "value"])


def score_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """count/mean/min/max of each calibrated score (raw measurements left out), for metadata."""
    scores = rows[~rows["score"].astype(str).str.startswith("raw.")]
    if scores.empty:
        return pd.DataFrame(columns=["score", "count", "mean", "min", "max"])
    g = scores.groupby("score")["value"]
    return pd.DataFrame({"count": g.count(), "mean": g.mean(), "min": g.min(), "max": g.max()}).round(3).reset_index()


def build_ranking(scores: pd.DataFrame, album_folder: str | os.PathLike, weights: fusion.Weights,
                  ) -> tuple[pd.DataFrame, fusion.FusionResult]:
    """Ranked table: the seed's columns first, then face count, raw measurements and bookkeeping."""
    scores = scores.copy()
    for col in fusion.score_columns().values():
        if col not in scores.columns:
            scores[col] = float("nan")
    result = fusion.fuse(scores, weights.values)
    ranked = fusion.rank(scores, result.final_score)
    folder = Path(album_folder)
    ranked.insert(0, "file", ranked["path"])
    ranked["path"] = [names.to_key(str(folder / names.from_key(p))) for p in ranked["file"]]
    ranked["face_present"] = ranked["face_present"].map(lambda v: None if pd.isna(v) else int(v >= 0.5))
    ranked["weights_id"] = weights.weights_id
    raw_cols = sorted(c for c in ranked.columns if c.startswith("raw."))
    ranked = ranked[[c for c in ranked.columns if c not in raw_cols] + raw_cols]
    ranked = ranked.rename(columns={c: c[4:].split(".", 1)[1] for c in raw_cols})
    return order_columns(ranked), result


def apply_groups(ranked: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Add ``group_id, group_size, is_best_in_group, group_kind, duplicate_of`` to a ranked table.

    ``groups`` maps each ``path`` (the album-relative ``file``) to a ``group_key`` and ``group_kind``
    (from the ``duplicate_groups`` asset). Membership does not depend on scores; the best pick does: it
    is the member ranked highest, unless another's open eyes or sharper face outweigh a marginally
    higher score (``dedup.FACE_PICK_MARGIN``). Groups are numbered by their best-ranked member (group 1
    holds the top photo). Photos missing from ``groups`` stand alone. Nothing is removed: duplicates are only marked.
    """
    from iqc_dagster.core import dedup

    keys = dict(zip(groups["path"], groups["group_key"])) if len(groups) else {}
    kinds = dict(zip(groups["path"], groups["group_kind"])) if len(groups) else {}
    next_key = (max(keys.values()) + 1) if keys else 0
    key_col = []
    for f in ranked["file"]:
        if f in keys:
            key_col.append(keys[f])
        else:  # not in the stored groups (should not happen): a group of its own
            key_col.append(next_key)
            next_key += 1
    bursts = [kinds.get(f) == "burst" for f in ranked["file"]]
    sequences = [kinds.get(f) if kinds.get(f) in dedup.SEQUENCE_KINDS else None for f in ranked["file"]]
    return dedup.mark_groups(ranked, key_col, bursts, kinds=sequences)


NO_DETAIL_COLUMN = "no_detail"


def demote_no_detail(ranked: pd.DataFrame, markers: dict[str, str]) -> pd.DataFrame:
    """Blank and tiny frames (``markers``: file -> :data:`dedup.NO_DETAIL` key) get ``final_score`` 0 and
    rank below every photo with detail, whatever their other scores (a black frame can look "well
    exposed" to nothing and "appealing" to CLIP); the column ``no_detail`` says why."""
    from iqc_dagster.core import dedup

    out = ranked.copy()
    text = [dedup.NO_DETAIL.get(markers.get(f) or "", "") for f in out["file"]]
    out[NO_DETAIL_COLUMN] = text
    flagged = pd.Series([bool(t) for t in text], index=out.index)
    if not flagged.any():
        return out
    out.loc[flagged, "final_score"] = 0.0
    out["_blank"] = flagged
    out = out.sort_values(["_blank", "final_score", "file"], ascending=[True, False, True], na_position="last",
                          kind="mergesort").drop(columns="_blank").reset_index(drop=True)
    out["rank"] = range(1, len(out) + 1)
    return out


GROUP_AND_REASON_COLUMNS = ["group_id", "group_size", "is_best_in_group", "group_kind", "duplicate_of",
                            "reasons"]


def order_columns(df: pd.DataFrame) -> pd.DataFrame:
    """CSV column order: the seed's columns, then groups and reasons, the other scores, raw measurements,
    and bookkeeping (content_hash, weights_id) last."""
    first = [c for c in CSV_COLUMNS + GROUP_AND_REASON_COLUMNS if c in df.columns]
    tail = [c for c in ("content_hash", "weights_id") if c in df.columns]
    scores = [c for c in df.columns if c.endswith("_norm") and c not in first]
    rest = [c for c in df.columns if c not in first and c not in tail and c not in scores]
    return df[first + scores + rest + tail]


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` to ``path`` via a temporary file and rename, so readers never see half a CSV.

    Lines end in CRLF (RFC 4180): the csv writer then quotes every field holding a ``\r`` or ``\n``, so
    a value with a bare carriage return cannot split its row (with ``\n`` endings it would not be
    quoted, and pandas reads it back as a line break)."""
    text = df.to_csv(index=False, float_format="%.6g", lineterminator="\r\n")
    return write_atomic(Path(path), text.encode("utf-8", "backslashreplace"))

"""Groups as columns of an album table: group id and kind, the best pick, ``duplicate_of``
(:func:`group_photos`, :func:`mark_groups`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from iqc_dagster.core.brackets import KINDS
from iqc_dagster.core.dedup.hashing import hash_matrix, no_detail_marker
from iqc_dagster.core.dedup.grouping import DEFAULT_THRESHOLDS, Thresholds, _embedding_matrix, _seconds, components, similar_pairs


#: Columns :func:`group_photos` adds.
GROUP_COLUMNS = ["group_id", "group_size", "is_best_in_group", "group_kind", "duplicate_of"]




def _order(df: pd.DataFrame) -> np.ndarray:
    """Row positions from best to worst: final_score desc (NaN last), then rank, then path/file."""
    score = pd.to_numeric(df["final_score"], errors="coerce").to_numpy(dtype=float)
    score = np.where(np.isfinite(score), score, -np.inf)
    keys = []
    for col in ("path", "file"):
        if col in df.columns:
            keys.append(df[col].astype(str).to_numpy())
            break
    if "rank" in df.columns:
        r = pd.to_numeric(df["rank"], errors="coerce").to_numpy(dtype=float)
        keys.append(np.where(np.isfinite(r), r, np.inf))
    keys.append(-score)
    return np.lexsort(keys)  # last key is primary


def group_photos(df: pd.DataFrame, thresholds: Thresholds = DEFAULT_THRESHOLDS, *,
                 hash_column: str = "phash", time_column: str = "captured_at",
                 embedding_column: str = "embedding", sequences=None) -> pd.DataFrame:
    """A copy of ``df`` with the group columns added (:data:`GROUP_COLUMNS`); rows keep their order.

    Needs ``final_score`` and ``file`` (or ``path``; names in ``duplicate_of`` come from it). Optional:
    ``phash`` (a :func:`photo_hashes` tuple, a single int of either sign, or their hex; None/NaN =
    unknown), ``captured_at`` (datetime or string; NaT/None = unknown), ``embedding`` (1-D array, e.g.
    CLIP, or None). A missing optional column just removes that kind of edge.

    * ``group_id``: 1..G, numbered in order of each group's best pick (group 1 holds the top photo);
    * ``group_size``: photos in the group (1 for a photo unlike any other);
    * ``is_best_in_group``: True for the group's highest ``final_score``, and for every singleton;
    * ``group_kind``: ``""`` (singleton), ``"duplicate"`` (all edges near-duplicate) or ``"burst"``;
    * ``duplicate_of``: for the other members, the best pick's ``file`` (or ``path``); else None.

    ``sequences``: ``[(row positions, kind)]`` of exposure brackets and focus stacks
    (:func:`iqc_dagster.core.brackets.find_sequences`). Each becomes a group of that kind on its own:
    its frames join no other group, and every frame is kept (each ``is_best_in_group``, no
    ``duplicate_of``): they were shot to be merged, not chosen from.
    """
    if "final_score" not in df.columns:
        raise ValueError("group_photos needs a final_score column")
    name_col = "file" if "file" in df.columns else "path" if "path" in df.columns else None
    if name_col is None:
        raise ValueError("group_photos needs a path or file column")
    out = df.drop(columns=[c for c in GROUP_COLUMNS if c in df.columns]).copy()
    n = len(out)
    if n == 0:
        return mark_groups(out, [])
    hash_values = out[hash_column].tolist() if hash_column in out.columns else [None] * n
    hashes, hash_ok = hash_matrix(hash_values)
    seconds = _seconds(out[time_column], n) if time_column in out.columns else None
    emb, emb_ok = _embedding_matrix(out[embedding_column] if embedding_column in out.columns else None, n)
    blank = np.array([no_detail_marker(v) is not None for v in hash_values], dtype=bool)
    if blank.any():  # no information to compare: no hash edge, no CLIP edge, no burst edge
        hash_ok = hash_ok & ~blank
        emb_ok = emb_ok & ~blank
    names = out[name_col].astype(str).to_numpy()
    i, j, burst = similar_pairs(hashes, hash_ok, seconds, emb, emb_ok, thresholds, names=names)
    if "content_hash" in out.columns:  # byte-identical files are duplicates, whatever their pixels
        ii, jj = _identical_pairs(out["content_hash"].tolist())
        if ii.size:
            i, j = np.concatenate([i, ii]), np.concatenate([j, jj])
            burst = np.concatenate([burst, np.zeros(ii.size, bool)])
    seq_kinds = None
    if sequences:
        member = np.full(n, -1, dtype=np.int64)
        seq_kinds = np.full(n, None, dtype=object)
        for k, (rows, kind) in enumerate(sequences):
            member[list(rows)] = k
            seq_kinds[list(rows)] = kind
        keep = (member[i] < 0) & (member[j] < 0)  # sequence frames join no duplicate or burst group
        i, j, burst = i[keep], j[keep], burst[keep]
        for rows, _kind in sequences:
            rows = list(rows)
            i = np.concatenate([i, np.full(len(rows) - 1, rows[0], dtype=np.int64)])
            j = np.concatenate([j, np.asarray(rows[1:], dtype=np.int64)])
            burst = np.concatenate([burst, np.zeros(len(rows) - 1, bool)])
    roots = components(n, i, j)
    burst_rows = np.zeros(n, dtype=bool)
    burst_rows[i[burst]] = True
    return mark_groups(out, roots, burst_rows, kinds=seq_kinds)


def _identical_pairs(content_hashes) -> tuple[np.ndarray, np.ndarray]:
    """(first row, other row) of each set of rows with the same non-empty content hash."""
    first: dict[str, int] = {}
    ii, jj = [], []
    for k, h in enumerate(content_hashes):
        if not isinstance(h, str) or not h:
            continue
        if h in first:
            ii.append(first[h])
            jj.append(k)
        else:
            first[h] = k
    return np.array(ii, dtype=np.int64), np.array(jj, dtype=np.int64)


#: Group kinds whose every frame is kept (core/brackets.py): no frame is a lesser duplicate.
SEQUENCE_KINDS = KINDS


#: The best pick of a group prefers open eyes and a sharp face over a marginally higher final score
#: (what a photographer picks from a burst): the pick compares ``final_score`` minus this much times
#: (1 - ``eyes_open``) and times (1 - ``face_sharpness_norm``); a missing score (no face) costs nothing.
FACE_PICK_MARGIN = {"eyes_open": 0.06, "face_sharpness_norm": 0.04}


def _pick_order(df: pd.DataFrame) -> np.ndarray:
    """Row positions from best to worst pick: :func:`_order`, by ``final_score`` less the face margins."""
    penalty = np.zeros(len(df))
    for col, margin in FACE_PICK_MARGIN.items():
        if col in df.columns:
            v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            penalty += np.where(np.isfinite(v), margin * (1.0 - np.clip(v, 0.0, 1.0)), 0.0)
    if not penalty.any():
        return _order(df)
    score = pd.to_numeric(df["final_score"], errors="coerce").to_numpy(dtype=float)
    adjusted = df.assign(final_score=np.where(np.isfinite(score), score - penalty, np.nan))
    return _order(adjusted.drop(columns=["rank"], errors="ignore"))


def mark_groups(df: pd.DataFrame, keys, burst_rows=None, kinds=None) -> pd.DataFrame:
    """Add :data:`GROUP_COLUMNS` to ``df`` given each row's group ``keys`` (equal key = same group) and,
    optionally, which rows take part in a burst link, and ``kinds``: per row, a
    :data:`SEQUENCE_KINDS` kind (or None) that overrides the group's kind and keeps every frame. The best pick of a group is its best-ranked row
    (:func:`_order`: highest ``final_score``) unless another member's open eyes or sharper face outweigh
    a marginally higher score (:data:`FACE_PICK_MARGIN`); groups are numbered by their best-ranked
    member (group 1 holds the top photo). Shared by :func:`group_photos` and the ranking, which applies stored groups."""
    out = df.drop(columns=[c for c in GROUP_COLUMNS if c in df.columns]).copy()
    n = len(out)
    if n == 0:
        for c, dtype in zip(GROUP_COLUMNS, ["int64", "int64", "bool", "object", "object"]):
            out[c] = pd.Series([], dtype=dtype, index=out.index)
        return out
    roots = np.asarray(keys)
    name_col = "file" if "file" in out.columns else "path"
    names = out[name_col].astype(str).to_numpy()
    order = _order(out)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)  # 0 = best photo of the table
    _, comp, sizes = np.unique(roots, return_inverse=True, return_counts=True)
    top_pos = np.full(sizes.size, n, dtype=np.int64)
    np.minimum.at(top_pos, comp, position)  # best-ranked member of each component
    pick = _pick_order(out)  # the best pick: ranked order, with a bonus for open eyes and a sharp face
    pick_position = np.empty(n, dtype=np.int64)
    pick_position[pick] = np.arange(n)
    best_pos = np.full(sizes.size, n, dtype=np.int64)
    np.minimum.at(best_pos, comp, pick_position)
    best_row = pick[best_pos]
    number = np.empty(sizes.size, dtype=np.int64)
    number[np.argsort(top_pos, kind="stable")] = np.arange(1, sizes.size + 1)  # group 1 holds the top photo
    bursty = np.zeros(sizes.size, dtype=bool)
    if burst_rows is not None:
        bursty[comp[np.asarray(burst_rows, dtype=bool)]] = True

    gid = number[comp]
    gsize = sizes[comp].astype(np.int64)
    is_best = best_row[comp] == np.arange(n)
    kind = np.where(gsize == 1, "", np.where(bursty[comp], "burst", "duplicate")).astype(object)
    if kinds is not None:
        seq = np.array([k in SEQUENCE_KINDS for k in kinds], dtype=bool) & (gsize > 1)
        kind[seq] = np.asarray(kinds, dtype=object)[seq]
        is_best = is_best | seq  # every frame of a bracket or focus stack is kept
    dup_of = np.where(is_best, None, names[best_row[comp]]).astype(object)
    out["group_id"] = gid
    out["group_size"] = gsize
    out["is_best_in_group"] = is_best
    out["group_kind"] = kind
    out["duplicate_of"] = dup_of
    return out


def group_summary(grouped: pd.DataFrame) -> dict:
    """Counts for logs and metadata: groups of 2+ photos, photos in them, non-best members."""
    if grouped.empty or "group_id" not in grouped.columns:
        return {"n_groups": 0, "n_grouped_photos": 0, "n_duplicates": 0}
    multi = grouped[grouped["group_size"] > 1]
    return {"n_groups": int(multi["group_id"].nunique()), "n_grouped_photos": int(len(multi)),
            "n_duplicates": int((~multi["is_best_in_group"].astype(bool)).sum())}

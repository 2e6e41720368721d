"""Evaluate one ranked album end to end: groups, reasons, proxy metrics, report.

The steps are separate functions in :mod:`.dedup`, :mod:`.reasons`, :mod:`.metrics` and :mod:`.report`;
this module chains them for ``iqc evaluate`` and for anyone who wants everything at once:

1. :func:`with_hashes_and_times` fills a missing ``phash`` column by decoding the photos, and a missing
   ``captured_at`` column from their EXIF headers (both skipped for rows whose file cannot be read);
2. :func:`iqc_dagster.core.dedup.group_photos` adds the group columns;
3. :func:`iqc_dagster.core.reasons.add_reasons` adds ``reasons``;
4. :func:`iqc_dagster.core.metrics.proxy_metrics` computes the metrics;
5. :func:`iqc_dagster.core.report.write_report` writes ``reports/<album>/``.

No Dagster import here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from iqc_dagster.core import dedup, metrics, ranking, reasons, report


@dataclass
class Evaluation:
    table: pd.DataFrame  # the input rows, best first, plus phash (hex), group columns and reasons
    metrics: dict  # metrics.proxy_metrics
    report: report.ReportFiles
    unhashed: int  # rows whose photo could not be read to compute a hash


def with_hashes_and_times(ranked: pd.DataFrame, *, hash_column: str = "phash",
                          time_column: str = "captured_at") -> tuple[pd.DataFrame, int]:
    """A copy with ``phash`` (computed from ``path`` where missing) and ``captured_at`` (EXIF, where
    the column is absent) and the number of rows left without a hash."""
    out = ranked.copy()
    n = len(out)
    paths = out["path"].tolist() if "path" in out.columns else [None] * n
    if hash_column in out.columns:
        have = [dedup.parse_hashes(v) is not None or dedup.no_detail_marker(v) is not None for v in out[hash_column]]
    else:
        have = [False] * n
        out[hash_column] = pd.Series([None] * n, index=out.index, dtype=object)
    todo = [k for k in range(n) if not have[k]]
    if todo:
        computed = dedup.hash_files([paths[k] for k in todo])
        col = out[hash_column].astype(object).tolist()
        for k, h in zip(todo, computed):
            col[k] = h
        out[hash_column] = pd.Series(col, index=out.index, dtype=object)
    if time_column not in out.columns:
        out[time_column] = dedup.capture_times(paths)
    unhashed = sum(dedup.parse_hashes(v) is None and dedup.no_detail_marker(v) is None for v in out[hash_column])
    return out, unhashed


def evaluate(ranked: pd.DataFrame, output_dir: str | os.PathLike, album: str, *, n_unreadable: int = 0,
             top_k: int = report.DEFAULT_TOP_K, thresholds: dedup.Thresholds = dedup.DEFAULT_THRESHOLDS,
             notes: list[str] | None = None) -> Evaluation:
    """Group, explain, measure and report ``ranked`` (needs ``final_score`` and ``path``/``file``)
    into ``report.report_folder(output_dir, album)``."""
    table, unhashed = with_hashes_and_times(ranked)
    table = dedup.group_photos(table, thresholds)
    table = reasons.add_reasons(table)
    table = report.ordered(table)
    table["phash"] = [dedup.no_detail_marker(v) or dedup.hashes_hex(dedup.parse_hashes(v)) for v in table["phash"]]
    table = table.drop(columns=[c for c in ("embedding",) if c in table.columns])
    m = metrics.proxy_metrics(table, n_unreadable=n_unreadable)
    files = report.write_report(table, report.report_folder(output_dir, album), album=album, metrics=m,
                                top_k=top_k, notes=notes)
    return Evaluation(table=table, metrics=m, report=files, unhashed=unhashed)


def skipped_count(csv_path: str | os.PathLike) -> int:
    """Rows of ``<stem>_skipped.csv`` beside a ranked CSV (how ``iqc rank`` lists unreadable files);
    0 when there is none or it cannot be read."""
    skipped = ranking.skipped_csv_path(csv_path)
    try:
        return len(pd.read_csv(skipped)) if skipped.is_file() else 0
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return 0

"""``iqc evaluate --input-csv CSV``: report on any ranked CSV (groups, reasons, histograms, montages)
and print its proxy metrics.

stdout gets exactly one line, the metrics as JSON (so ``iqc evaluate ... | jq .score_std`` works);
where the report went, and any warning, goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from iqc_dagster.cli import CLIError

REQUIRED = "final_score and path (or file)"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="report on a ranked CSV: duplicate groups, reasons, histograms, montages, metrics",
        description="Read a ranked CSV (e.g. from `iqc rank`), group near-duplicates and bursts (decoding the "
                    "photos in its `path` column), explain each photo's rank, write an HTML report with "
                    "histograms and top/bottom montages to OUTPUT_DIR/reports/<CSV name>/, and print the proxy "
                    "metrics as one line of JSON on stdout. The CSV and the photos are only read.")
    p.add_argument("--input-csv", required=True, type=Path, help="a ranked CSV: needs final_score and path "
                                                                 "(or file); other columns are used when present")
    p.add_argument("--output-dir", help="where reports/<album>/ goes (default: $IQC_OUTPUT_DIR or output/)")
    p.add_argument("--top-k", type=int, default=8, help="photos in the top and bottom montages (default: 8)")
    p.add_argument("--album", help="report folder name (default: the CSV's name without .csv)")
    p.set_defaults(func=run)


def read_ranked_csv(path: Path):
    """The CSV as a DataFrame with an absolute-or-CSV-relative ``path``; :class:`CLIError` otherwise."""
    import pandas as pd

    if not path.exists():
        raise CLIError(f"{path} does not exist")
    if not path.is_file():
        raise CLIError(f"{path} is not a file")
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}") from None
    if b"\x00" in head:
        raise CLIError(f"{path} is not a CSV file (it contains binary data)")
    try:
        df = pd.read_csv(path, dtype={"phash": str})
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path} is empty: expected a ranked CSV with columns {REQUIRED}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CLIError(f"{path} is not a readable CSV: {first}") from None
    cols = set(df.columns)
    missing = []
    if "final_score" not in cols:
        missing.append("final_score")
    if "path" not in cols and "file" not in cols:
        missing.append("path (or file)")
    if missing:
        shown = ", ".join(str(c) for c in list(df.columns)[:8]) + (", ..." if len(df.columns) > 8 else "")
        raise CLIError(f"{path} lacks required column(s) {', '.join(missing)} (has: {shown or 'none'})")
    scores = pd.to_numeric(df["final_score"], errors="coerce")
    if len(df) and scores.notna().sum() == 0:
        raise CLIError(f"{path}: final_score has no numeric values")
    df["final_score"] = scores
    base = path.resolve().parent
    if "path" not in cols:
        df["path"] = [str(base / str(f)) for f in df["file"]]
    else:
        df["path"] = [p if not isinstance(p, str) or os.path.isabs(p) else str(base / p) for p in df["path"]]
    return df


def run(args) -> int:
    from iqc_dagster.core import evaluation, report
    from iqc_dagster.core.config import Settings

    if args.top_k < 0:
        raise CLIError("--top-k must be 0 or more")
    csv = args.input_csv.expanduser()
    df = read_ranked_csv(csv)
    album = args.album or csv.stem
    output_dir = Path(args.output_dir or Settings.from_env().output_dir).expanduser()
    try:
        result = evaluation.evaluate(df, output_dir, album, n_unreadable=evaluation.skipped_count(csv),
                                     top_k=args.top_k, notes=[f"from {csv.resolve()}"])
        table_csv = result.report.folder / "evaluated.csv"
        from iqc_dagster.core.ranking import write_csv_atomic

        write_csv_atomic(result.table, table_csv)
    except OSError as exc:
        raise CLIError(f"cannot write the report under {report.report_folder(output_dir, album)}: "
                       f"{exc.strerror or exc}") from None
    print(json.dumps(result.metrics, sort_keys=False), flush=True)
    if result.unhashed:
        print(f"iqc evaluate: warning: {result.unhashed} photo(s) could not be read: they are in the report "
              f"(grey thumbnail) but not compared by perceptual hash", file=sys.stderr)
    print(f"iqc evaluate: report -> {result.report.index.resolve()} (table: {table_csv.resolve()})",
          file=sys.stderr)
    return 0

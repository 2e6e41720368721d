"""Helpers shared by sub-commands: settings from flags/environment, running albums, printing results."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from iqc_dagster.cli import CLIError
from iqc_dagster.core import inventory
from iqc_dagster.core.config import ENV_DB, ENV_OUTPUT_DIR, Settings


def add_store_args(p) -> None:
    p.add_argument("--db", help=f"DuckDB file (default: ${ENV_DB} or data/iqc.duckdb)")
    p.add_argument("--output-dir", help=f"where CSVs and reports go (default: ${ENV_OUTPUT_DIR} or output/)")
    p.add_argument("--quiet", action="store_true", help="only warnings and the result, no progress logs")


def settings_for(args, photo_root: str | None = None) -> Settings:
    base = Settings.from_env()
    return Settings(photo_root=photo_root or base.photo_root, db_path=args.db or base.db_path,
                    output_dir=args.output_dir or base.output_dir)


def check_album_folder(folder: Path) -> None:
    if not folder.exists():
        raise CLIError(f"{folder} does not exist")
    if not folder.is_dir():
        raise CLIError(f"{folder} is not a directory")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise CLIError(f"{folder} is not readable")
    if not inventory.list_photo_files(folder):
        raise CLIError(f"no photos found in {folder} (looked for {', '.join(sorted(inventory.imaging.IMAGE_EXTENSIONS))})")


def run_album(album: str, settings: Settings, quiet: bool = False) -> Path:
    from iqc_dagster.defs.runner import RunFailed, materialize_album

    try:
        inventory.validate_album_name(album)
        materialize_album(album, settings, log_level="WARNING" if quiet else "INFO")
    except (inventory.AlbumError, RunFailed) as exc:
        raise CLIError(str(exc)) from None
    return Path(settings.output_dir) / "csvs" / f"{album}.csv"


def print_top(csv_path: Path, n: int = 5) -> None:
    df = pd.read_csv(csv_path)
    skipped = csv_path.with_name(f"{csv_path.stem}_skipped.csv")
    n_skipped = len(pd.read_csv(skipped)) if skipped.exists() else 0
    print(f"ranked {len(df)} photos -> {csv_path.resolve()}"
          + (f" ({n_skipped} unreadable, listed in {skipped.resolve()})" if n_skipped else ""))
    if df.empty:
        return
    print(f"top {min(n, len(df))}:")
    for row in df.head(n).itertuples():
        aest = "" if pd.isna(row.aesthetic) else f"  aesthetic {row.aesthetic:.2f}"
        print(f"  {row.rank:>3}. {row.final_score:.3f}  {row.file}{aest}")

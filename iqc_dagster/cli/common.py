"""Helpers shared by sub-commands: settings from flags/environment, running albums, printing results."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd

from iqc_dagster.cli import CLIError
from iqc_dagster.core import clip as clipcore
from iqc_dagster.core import inventory, names
from iqc_dagster.core.config import ENV_DB, ENV_OUTPUT_DIR, Settings


def add_store_args(p) -> None:
    p.add_argument("--db", help=f"DuckDB file (default: ${ENV_DB} or data/iqc.duckdb)")
    p.add_argument("--output-dir", help=f"where CSVs and reports go (default: ${ENV_OUTPUT_DIR} or output/)")
    p.add_argument("--quiet", action="store_true", help="only warnings and the result, no progress logs")


def add_clip_args(p, device: bool = True) -> None:
    """CLIP flags; each overrides its IQC_CLIP_* environment variable (see docs/clip.md)."""
    g = p.add_argument_group("aesthetic score (CLIP)")
    g.add_argument("--clip-model", metavar="ID_OR_DIR",
                   help=f"Hugging Face id (already in the local cache) or model folder "
                        f"(default: ${clipcore.ENV_MODEL} or {clipcore.DEFAULT_MODEL})")
    g.add_argument("--no-clip", action="store_true",
                   help="skip CLIP on purpose: no aesthetic score, its weight goes to the other scores")
    if device:
        g.add_argument("--device", choices=["cpu", "cuda"], default=None,
                       help=f"device for CLIP (default: ${clipcore.ENV_DEVICE} or cpu)")
    g.add_argument("--positive-prompt", action="append", metavar="TEXT",
                   help="a prompt describing a good photo (repeatable; replaces the default)")
    g.add_argument("--negative-prompt", action="append", metavar="TEXT",
                   help="a prompt describing a bad photo (repeatable; replaces the default)")
    g.add_argument("--clip-batch-size", type=int, metavar="N", help="images per CLIP forward pass (default 32)")
    g.add_argument("--clip-precision", choices=clipcore.PRECISIONS,
                   help="image-tower arithmetic: auto (bfloat16 on CPUs with AMX, else float32; default), "
                        "fp32 or bf16")


#: Each CLIP flag of :func:`add_clip_args` -> the ClipSettings field it sets (and how).
CLIP_FLAGS = {
    "clip_model": ("model", str),
    "no_clip": ("enabled", lambda on: False),
    "device": ("device", str),
    "positive_prompt": ("positive_prompts", tuple),
    "negative_prompt": ("negative_prompts", tuple),
    "clip_batch_size": ("batch_size", int),
    "clip_precision": ("precision", str),
}


def clip_settings_for(args, base: clipcore.ClipSettings | None = None) -> clipcore.ClipSettings:
    """CLIP settings: the environment's, overridden by whichever CLIP flags ``args`` has."""
    base = base or clipcore.ClipSettings.from_env()
    changes = {}
    for flag, (field, convert) in CLIP_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None or value is False or (isinstance(value, (list, str)) and not value):
            continue  # flag not given (0 is a value: --clip-batch-size 0 is refused below)
        changes[field] = convert(value)
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def settings_for(args, photo_root: str | None = None) -> Settings:
    try:
        base = Settings.from_env()
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return dataclasses.replace(base, photo_root=photo_root or base.photo_root, db_path=args.db or base.db_path,
                               output_dir=args.output_dir or base.output_dir, clip=clip_settings_for(args, base.clip))


def refuse_outputs_inside(folder: Path, settings: Settings, what_folder: str, extra=()) -> None:
    """iqc never writes into photo folders: a one-line error when the output folder, the database or
    an ``extra`` ``(what, path)`` lies inside ``folder`` (or is it)."""
    folder = folder.expanduser().resolve()
    for what, where in (("output folder", Path(settings.output_dir)), ("database", Path(settings.db_path)),
                        *extra):
        if where is not None and where.expanduser().resolve().is_relative_to(folder):
            raise CLIError(f"the {what} {names.display(where)} is inside the {what_folder} {names.display(folder)}: "
                           f"iqc never writes into photo folders (the next run would rank its own files); "
                           f"run from another directory or pass --output-dir/--db elsewhere")


def check_album_folder(folder: Path) -> None:
    if not folder.exists():
        raise CLIError(f"{names.display(folder)} does not exist")
    if not folder.is_dir():
        raise CLIError(f"{names.display(folder)} is not a directory")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise CLIError(f"{names.display(folder)} is not readable")
    files, problems = inventory.walk_album(folder)
    if not files and not problems:
        exts = sorted(inventory.imaging.IMAGE_EXTENSIONS | inventory.imaging.RAW_EXTENSIONS)
        raise CLIError(f"no photos found in {names.display(folder)} (looked for {', '.join(exts)})")


def album_for(root: Path, name: str) -> str:
    """The album key for ``--album NAME``: NAME as the folder is called (as typed), or as iqc prints it
    (its key, e.g. ``caf\\xe9``)."""
    if (root / name).is_dir() or not names.is_key(name, album=True):
        return inventory.album_key(name)
    return name


def albums_with_photos(root: Path, albums: list[str]) -> tuple[list[str], list[str]]:
    """``(albums to rank, empty albums)`` among ``albums`` (keys) under ``root``; one-line errors for bad
    names."""
    todo, empty = [], []
    for album in albums:
        try:
            folder = inventory.album_dir(root, album)
        except inventory.AlbumError as exc:
            raise CLIError(str(exc)) from None
        if folder.is_dir() and os.access(folder, os.R_OK | os.X_OK) and not any(map(len, inventory.walk_album(folder))):
            empty.append(album)  # an empty album is not an error while others have photos
            continue
        check_album_folder(folder)
        todo.append(album)
    return todo, empty


def csv_path_of(album: str, settings: Settings) -> Path:
    from iqc_dagster.core.ranking import csv_path

    return csv_path(settings.output_dir, album)


def run_album(album: str, settings: Settings, quiet: bool = False, clip_models=None) -> Path:
    """Rank ``album`` in this process; ``clip_models`` (a ``clip.ModelCache``) is shared by the albums
    of one command, so the CLIP model loads once."""
    from iqc_dagster.defs.resources import DatabaseLocked, NotADuckDBFile
    from iqc_dagster.runner import RunFailed, materialize_album

    from iqc_dagster.core import store

    bad_db = store.not_duckdb_message(settings.db_path)
    if bad_db:
        raise CLIError(bad_db)
    try:
        inventory.validate_album_name(album)
        result = materialize_album(album, settings, log_level="WARNING" if quiet else "INFO",
                                   clip_models=clip_models)
    except (inventory.AlbumError, RunFailed, NotADuckDBFile, DatabaseLocked) as exc:
        raise CLIError(str(exc)) from None
    print_aesthetic_notice(result)
    return csv_path_of(album, settings)


def aesthetic_outcome(result) -> dict | None:
    """The ``aesthetic_scores`` materialization metadata of a run (status, message, ...), if any."""
    import dagster as dg

    mats = [m for m in result.get_asset_materialization_events()
            if m.asset_key == dg.AssetKey("aesthetic_scores")]
    if not mats:
        return None
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def print_aesthetic_notice(result) -> None:
    """Say plainly when the aesthetic score was not computed, and how to get it."""
    md = aesthetic_outcome(result)
    if not md:
        return
    if md.get("status") == "skipped":
        import textwrap

        lines = [f"aesthetic scoring skipped: {md.get('reason', '?')}.", md.get("how_to_enable", ""),
                 "This ranking uses the technical scores only (the aesthetic weight was redistributed)."]
        print("!" * 78)
        for line in lines:
            for part in textwrap.wrap(line, 74):
                print(f"! {part}")
        print("!" * 78)
    elif md.get("status") == "off":
        print("aesthetic scoring off (--no-clip / IQC_CLIP=0): ranked on the technical scores only")
    elif md.get("n_missing"):
        print(f"note: {md.get('message')}")


def print_top(csv_path: Path, n: int = 5, skipped_from: Path | None = None, album: str | None = None) -> None:
    """Where the CSV is, how many photos were unreadable (from ``<album>_skipped.csv`` beside
    ``skipped_from``, the pipeline's own CSV; RAW files counted apart), and the top ``n``. File names
    are printed escaped (:func:`names.display`)."""
    df = pd.read_csv(csv_path)
    src = Path(skipped_from or csv_path)
    from iqc_dagster.core.ranking import skipped_csv_path

    skipped = skipped_csv_path(src)
    from iqc_dagster.core.report import report_folder

    report = report_folder(src.parent.parent, album if album is not None else src.stem) / "index.html"
    sk = pd.read_csv(skipped) if skipped.exists() else pd.DataFrame(columns=["file", "reason"])
    n_raw = sum(inventory.imaging.is_raw_name(str(f)) for f in sk["file"])
    notes = []
    if len(sk):
        notes.append(f"{len(sk)} unreadable" + (f", {n_raw} of them RAW" if n_raw else ""))
    n_pairs = int(df["companions"].fillna("").astype(str).str.len().gt(0).sum()) if "companions" in df else 0
    pairs = f" ({n_pairs} RAW + JPEG pair(s) scored once each)" if n_pairs else ""
    print(f"ranked {len(df)} photos -> {names.display(csv_path.resolve())}" + pairs
          + (f" ({', '.join(notes)}, listed in {names.display(skipped.resolve())})" if notes else ""))
    if report.is_file():
        print(f"report -> {names.display(report.resolve())}")
    if df.empty:
        return
    if "aesthetic" in df and df["aesthetic"].isna().all():
        print("no aesthetic scores in this ranking (CLIP skipped or off)")
    print(f"top {min(n, len(df))}:")
    for row in df.head(n).itertuples():
        aest = "" if pd.isna(row.aesthetic) else f"  aesthetic {row.aesthetic:.2f}"
        print(f"  {row.rank:>3}. {row.final_score:.3f}  {names.display(row.file)}{aest}")

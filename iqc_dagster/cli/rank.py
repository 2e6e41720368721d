"""``iqc rank --input-dir DIR``: rank one folder of photos (the folder is the album)."""

from __future__ import annotations

import shutil
from pathlib import Path

from iqc_dagster.cli import CLIError
from iqc_dagster.cli.common import (add_clip_args, add_store_args, check_album_folder, print_top, run_album,
                                    settings_for)


def add_parser(sub) -> None:
    p = sub.add_parser("rank", help="rank every photo in a folder; writes a ranked CSV",
                       description="Run the album asset graph in-process on DIR (DIR is the album) and "
                                   "print where the ranked CSV is and the top 5.")
    p.add_argument("--input-dir", required=True, type=Path, help="folder of photos (sub-folders included)")
    p.add_argument("--output", type=Path, help="also copy the ranked CSV to this path")
    add_clip_args(p)
    add_store_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    folder = args.input_dir.expanduser()
    check_album_folder(folder)
    folder = folder.resolve()
    if folder.parent == folder:
        raise CLIError("cannot use the file-system root as an album; point --input-dir at a photo folder")
    if args.device == "cuda" and not args.no_clip:
        import torch

        if not torch.cuda.is_available():
            raise CLIError("--device cuda requested but no CUDA device is available; use --device cpu")
    settings = settings_for(args, photo_root=str(folder.parent))
    for what, where in (("output folder", Path(settings.output_dir)), ("database", Path(settings.db_path)),
                        ("--output CSV", args.output)):
        if where is not None and where.expanduser().resolve().is_relative_to(folder):
            raise CLIError(f"the {what} {where} is inside the album {folder}: iqc never writes into photo "
                           f"folders; run from another directory or pass --output-dir/--db/--output elsewhere")
    csv = run_album(folder.name, settings, quiet=args.quiet)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(csv, args.output)
    print_top(args.output or csv, skipped_from=csv)
    return 0

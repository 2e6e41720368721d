"""``iqc rank --input-dir DIR``: rank one folder of photos (the folder is the album)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from iqc_dagster.cli import CLIError
from iqc_dagster.cli.common import (add_clip_args, add_store_args, check_album_folder, print_top,
                                    refuse_outputs_inside, run_album, settings_for)
from iqc_dagster.core import inventory, names


def add_parser(sub) -> None:
    p = sub.add_parser("rank", help="rank every photo in a folder; writes a ranked CSV",
                       description="Run the album asset graph in-process on DIR (DIR is the album) and "
                                   "print where the ranked CSV is and the top 5.")
    p.add_argument("--input-dir", required=True, type=Path, help="folder of photos (sub-folders included)")
    p.add_argument("--output", type=Path, help="also copy the ranked CSV to this path")
    p.add_argument("--album", metavar="NAME",
                   help="the album's name in the database and output files (default: the folder's name); "
                        "needed when another folder of the same name was ranked into this database")
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
    if args.album is not None:
        album = args.album if names.is_key(args.album, album=True) else inventory.album_key(args.album)
        try:
            inventory.validate_album_name(album)
        except inventory.AlbumError as exc:
            raise CLIError(str(exc)) from None
        if album != inventory.album_key(folder.name):
            settings = dataclasses.replace(settings, album_folders=((album, str(folder)),))
    else:
        album = inventory.album_key(folder.name)
    refuse_outputs_inside(folder, settings, "album", extra=[("--output CSV", args.output)])
    csv = run_album(album, settings, quiet=args.quiet)
    shown = csv
    if args.output:
        out = args.output.expanduser()
        if out.exists() and os.path.samefile(out, csv):
            pass  # --output names the album's own CSV: it is already there
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(csv, out)
        shown = out
    print_top(shown, skipped_from=csv, album=album)
    return 0



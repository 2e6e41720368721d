"""``iqc run``: rank every album under the photo root (or the named ones), as the sensor would.

One album's failure is reported and the others are still ranked; the exit status is then non-zero
and a summary names each failed album.
"""

from __future__ import annotations

import sys
from pathlib import Path

from iqc_dagster.cli import CLIError
from iqc_dagster.cli.common import (add_clip_args, add_store_args, album_for, albums_with_photos, print_top,
                                    refuse_outputs_inside, run_album, settings_for)
from iqc_dagster.core import inventory, names
from iqc_dagster.core.config import ENV_PHOTO_ROOT


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="rank every album under the photo root",
                       description="Materialize the album graph for each album folder under the photo root. "
                                   "Hidden folders (a leading dot) are skipped, and listed, unless named "
                                   "with --album. A failing album does not stop the others; the exit "
                                   "status is 1 when any failed.")
    p.add_argument("--photo-root", help=f"folder of album folders (default: ${ENV_PHOTO_ROOT} or data/albums)")
    p.add_argument("--album", action="append", help="only this album (repeatable)")
    add_clip_args(p)
    add_store_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    settings = settings_for(args, photo_root=args.photo_root)
    root = Path(settings.photo_root)
    if not root.exists():
        raise CLIError(f"photo root {names.display(root)} does not exist (set {ENV_PHOTO_ROOT} or --photo-root)")
    if not root.is_dir():
        raise CLIError(f"photo root {names.display(root)} is not a directory")
    refuse_outputs_inside(root, settings, "photo root")
    listing = None
    if args.album:
        albums = [album_for(root, a) for a in args.album]
    else:
        try:
            listing = inventory.scan_root(root)
        except inventory.AlbumError as exc:
            raise CLIError(str(exc)) from None
        albums = listing.albums
    if not albums:
        raise CLIError(f"no album folders under {names.display(root)}: put each album in its own sub-folder")
    todo, empty = albums_with_photos(root, albums)
    done, failed = [], []
    from iqc_dagster.core.clip import ModelCache

    clip_models = ModelCache()  # one CLIP model load for all the albums of this command
    for album in todo:
        print(f"== {names.display(album)}", flush=True)
        try:
            csv = run_album(album, settings, quiet=args.quiet, clip_models=clip_models)
        except CLIError as exc:  # one album's failure must not sink the others
            print(f"iqc run: error: album {names.display(album)}: {names.display(exc)}", file=sys.stderr, flush=True)
            failed.append((album, str(exc)))
            continue
        print_top(csv, album=album)
        done.append(album)
    if empty:
        print(f"\nskipped {len(empty)} album(s) without photos: {', '.join(map(names.display, empty))}")
    if listing and listing.hidden:
        print(f"skipped {len(listing.hidden)} hidden folder(s) (rank one with --album NAME): "
              f"{', '.join(map(names.display, listing.hidden))}")
    if listing and listing.unreadable:
        print(f"skipped {len(listing.unreadable)} folder(s) that cannot be read: "
              f"{', '.join(f'{names.display(a)} ({why})' for a, why in listing.unreadable)}")
    out = Path(settings.output_dir).resolve()
    if not done and not failed:
        raise CLIError(f"no photos found in any album under {names.display(root)}")
    print(f"\n{len(done)} album(s) ranked. CSVs: {names.display(out / 'csvs')}  reports: {names.display(out / 'reports')}")
    if failed:
        print(f"iqc run: {len(failed)} of {len(todo)} album(s) failed:", file=sys.stderr)
        for album, why in failed:
            print(f"  {names.display(album)}: {names.display(why)}", file=sys.stderr)
        return 1
    return 0

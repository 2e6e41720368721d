"""``iqc run``: rank every album under the photo root (or the named ones), as the sensor would."""

from __future__ import annotations

from pathlib import Path

from iqc_dagster.cli import CLIError
from iqc_dagster.cli.common import add_clip_args, add_store_args, albums_with_photos, print_top, run_album, settings_for
from iqc_dagster.core import inventory
from iqc_dagster.core.config import ENV_PHOTO_ROOT


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="rank every album under the photo root",
                       description="Materialize the album graph for each album folder under the photo root.")
    p.add_argument("--photo-root", help=f"folder of album folders (default: ${ENV_PHOTO_ROOT} or data/albums)")
    p.add_argument("--album", action="append", help="only this album (repeatable)")
    add_clip_args(p)
    add_store_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    settings = settings_for(args, photo_root=args.photo_root)
    root = Path(settings.photo_root)
    if not root.exists():
        raise CLIError(f"photo root {root} does not exist (set {ENV_PHOTO_ROOT} or --photo-root)")
    if not root.is_dir():
        raise CLIError(f"photo root {root} is not a directory")
    albums = args.album or inventory.list_albums(root)
    if not albums:
        raise CLIError(f"no album folders under {root}: put each album in its own sub-folder")
    todo, empty = albums_with_photos(root, albums)
    csvs = []
    for album in todo:
        print(f"== {album}")
        csvs.append(run_album(album, settings, quiet=args.quiet))
        print_top(csvs[-1])
    if not csvs:
        raise CLIError(f"no photos found in any album under {root}")
    if empty:
        print(f"\nskipped {len(empty)} album(s) without photos: {', '.join(empty)}")
    out = Path(settings.output_dir).resolve()
    print(f"\n{len(csvs)} album(s) ranked. CSVs: {out / 'csvs'}  reports: {out / 'reports'}")
    return 0

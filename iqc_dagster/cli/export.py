"""``iqc export xmp``: the album's ranking as XMP sidecars (stars, colour label, ``iqc/`` keywords) for
Lightroom, darktable, digiKam and others (core/xmp.py; docs/workflow.md)."""

from __future__ import annotations

import sys
from pathlib import Path


from iqc_dagster.cli import CLIError
from iqc_dagster.core import inventory, names, ranking, ratings
from iqc_dagster.core import xmp as xmpcore


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a ranking to photo managers (XMP sidecars)",
                       description="Export an album's ranking (its ranked CSV) to other tools.")
    what = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    x = what.add_parser(
        "xmp", help="write XMP sidecars: rating, colour label and iqc/ keywords",
        description="Write an XMP sidecar per ranked photo (the photos themselves are never written): "
                    "xmp:Rating (pick 4, keep 3, duplicate 2, reject 1 by default), xmp:Label and iqc/ "
                    "keywords; an existing sidecar is merged, the user's own rating and label kept. "
                    "With --labels, the decisions you exported from the review page "
                    "(output/reports/<album>/index.html) are the ratings instead of iqc's suggestions. "
                    "This is the one command that writes into an album folder; --dest writes elsewhere.")
    src = x.add_mutually_exclusive_group(required=True)
    src.add_argument("--input-dir", type=Path, help="the album folder (as given to iqc rank --input-dir)")
    src.add_argument("--album", metavar="NAME", help="an album under the photo root (IQC_PHOTO_ROOT), by name")
    x.add_argument("--name", metavar="NAME", help="with --input-dir: the album's name if it was ranked with "
                                                  "--album NAME")
    x.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    x.add_argument("--sidecar", choices=xmpcore.STYLES, default="ext",
                   help="name of new sidecars: ext = photo.jpg.xmp (darktable, digiKam, Immich; default), "
                        "base = photo.xmp (Lightroom, Capture One). An existing sidecar of either name is "
                        "edited in place")
    x.add_argument("--labels", type=Path, metavar="CSV",
                   help="your decisions from the review page (its 'Export ratings CSV' file,rating or 'Export "
                        "picks CSV' file,pick; the format iqc tune --labels reads): stars become xmp:Rating, "
                        "a pick gets the pick rating (4), a reject the reject rating (1, -1 with "
                        "--reject-flag). They replace iqc's suggestions; a different rating already in a "
                        "sidecar is kept unless --overwrite-ratings. iqc tune then learns from them")
    x.add_argument("--overwrite-ratings", action="store_true",
                   help="replace ratings and labels the user set (default: keep them); with --labels, "
                        "your review decisions replace the ratings in the sidecars")
    x.add_argument("--dest", type=Path, metavar="DIR",
                   help="write the sidecars under DIR (same sub-folders) instead of beside the photos")
    x.add_argument("--top-share", type=float, default=xmpcore.Policy().top_share, metavar="F",
                   help="best-in-group photos in this top fraction of the album are picks (default 0.2)")
    x.add_argument("--rating", action="append", default=[], metavar="CLASS=N",
                   help="stars for a class: pick, keep, duplicate, reject (repeatable; e.g. reject=0)")
    x.add_argument("--label", action="append", default=[], metavar="CLASS=COLOUR",
                   help="colour label for a class (Red, Yellow, Green, Blue, Purple, or empty for none)")
    x.add_argument("--reject-flag", action="store_true",
                   help="rate clear technical rejects -1 (the XMP 'rejected' flag) instead of 1 star")
    x.add_argument("--output-dir", help="where the ranked CSVs are (default: $IQC_OUTPUT_DIR or output/)")
    x.add_argument("--quiet", action="store_true", help="only the summary line")
    x.set_defaults(func=run)


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for v in values:
        cls, sep, val = v.partition("=")
        cls = cls.strip().lower()
        if not sep or cls not in xmpcore.CLASSES:
            raise CLIError(f"--{what} {v!r}: use CLASS=VALUE with CLASS one of {', '.join(xmpcore.CLASSES)}")
        out[cls] = val.strip()
    return out


def policy_for(args) -> xmpcore.Policy:
    base = xmpcore.Policy()
    ratings = dict(base.ratings)
    for cls, v in _pairs(args.rating, "rating").items():
        try:
            ratings[cls] = int(v)
        except ValueError:
            raise CLIError(f"--rating {cls}={v}: not a whole number") from None
    labels = dict(base.labels)
    for cls, v in _pairs(args.label, "label").items():
        labels[cls] = v.capitalize() if v else ""
    try:
        return xmpcore.Policy(top_share=args.top_share, ratings=ratings, labels=labels,
                              reject_flag=args.reject_flag, overwrite_ratings=args.overwrite_ratings)
    except xmpcore.XmpError as exc:
        raise CLIError(str(exc)) from None


def album_folder_of(rows: list[dict]) -> Path | None:
    """The album folder, from the CSV's absolute ``path`` and album-relative ``file`` columns."""
    for r in rows:
        path, file = names.from_key(r.get("path", "")), names.from_key(r.get("file", ""))
        if path and file and path.endswith("/" + file):
            return Path(path[: -len(file) - 1])
    return None


def run(args) -> int:
    from iqc_dagster.core.config import Settings

    policy = policy_for(args)
    try:
        base = Settings.from_env()
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    out_dir = Path(args.output_dir or base.output_dir)
    if args.input_dir is not None:
        folder = args.input_dir.expanduser()
        if not folder.is_dir():
            raise CLIError(f"{names.display(folder)} is not a directory")
        folder = folder.resolve()
        album = args.name or inventory.album_key(folder.name)
        hint = f"iqc rank --input-dir {names.display(args.input_dir)}"
    else:
        album = args.album
        folder = None
        hint = f"iqc run --album {names.display(album)}"
    csv = ranking.csv_path(out_dir, album)
    if not csv.is_file():
        raise CLIError(f"no ranking of album {names.display(album)!r} in {names.display(out_dir)}: run "
                       f"{hint} first (or pass --output-dir)")
    rows = xmpcore.read_ranked_csv(csv)
    if folder is None:
        folder = album_folder_of(rows) or (Path(base.photo_root) / names.from_key(album))
    if not folder.is_dir():
        raise CLIError(f"the album folder {names.display(folder)} of {names.display(csv)} does not exist")
    dest = args.dest.expanduser().resolve() if args.dest else None
    log = (lambda _m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    try:
        summary, decisions = xmpcore.export_album(
            rows, folder, policy, album=album, labels=args.labels, warn=lambda m: print(m, file=sys.stderr),
            style=args.sidecar, dest=dest, dry_run=args.dry_run, log=log)
    except ratings.LabelsError as exc:
        raise CLIError(str(exc)) from None
    where = names.display(dest if dest else folder)
    verb = "would write" if args.dry_run else "wrote"
    classes = ", ".join(f"{summary.by_class.get(c, 0)} {c}" for c in xmpcore.CLASSES)
    kept = f", kept {summary.kept_user_ratings} rating(s) you set" if summary.kept_user_ratings else ""
    review = ""
    if decisions is not None:
        review = (f"; {decisions.n_matched} review decision(s) applied to {summary.decisions_applied} sidecar(s)")
        if summary.decision_conflicts:
            review += (f", {summary.decision_conflicts} differed from a rating in the sidecar ("
                       + (f"kept {summary.conflicts_kept}: --overwrite-ratings applies them)"
                          if summary.conflicts_kept else "replaced)"))
    print(f"{verb} {len(summary.written)} sidecar(s) in {where} ({len(summary.unchanged)} unchanged{kept}; "
          f"{classes}{review})")
    for file, reason in summary.failed:
        print(f"  not written: {names.display(file)}: {reason}", file=sys.stderr)
    return 1 if summary.failed else 0

"""``iqc tune``: learn the fusion weights from preferences (Optuna) and print one JSON line.

Computes missing features for every album under the photo root first (the album graph, cached), then
materializes the ``tuned_weights`` asset: the user's ratings (``--labels`` CSV, XMP sidecars, embedded
XMP/EXIF) when there are enough, else the synthetic degradation pairs of the ranking-quality benchmark.
Progress goes to stderr; stdout gets exactly one JSON line at the end.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from iqc_dagster.cli import CLIError
from iqc_dagster.cli.common import add_clip_args, add_store_args, albums_with_photos, run_album, settings_for
from iqc_dagster.core import inventory, tuning
from iqc_dagster.core.config import ENV_PHOTO_ROOT


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def add_parser(sub) -> None:
    p = sub.add_parser(
        "tune", help="learn the fusion weights from your ratings (or synthetic degradations) with Optuna",
        description="Compute missing features for every album, then tune the fusion weights on pairwise "
                    "agreement with preferences: your ratings (labels CSV, XMP sidecars, embedded XMP/EXIF "
                    "ratings) when there are enough, else the ranking-quality benchmark's synthetic "
                    "degradation pairs. Split by photo; prints one JSON line with the held-out agreement of "
                    "the default and the tuned weights. Later rankings use the tuned weights when they are "
                    "not worse held-out. The study is stored in $IQC_OUTPUT_DIR/tuning/optuna.sqlite3 and "
                    "resumes: running again adds trials.")
    p.add_argument("--trials", type=int, default=tuning.DEFAULT_TRIALS, metavar="N",
                   help=f"trials to add to the study (default {tuning.DEFAULT_TRIALS})")
    p.add_argument("--labels", type=Path, metavar="CSV",
                   help="ratings CSV: columns file,rating (any numbers, higher = better) or file,pick "
                        "(pick/reject/1/0/-1); file = absolute, album/photo.jpg or photo.jpg. The review "
                        "page's exports are such files (decisions written to sidecars with iqc export xmp "
                        "--labels are read from the sidecars without this option)")
    p.add_argument("--photo-root",
                   help=f"folder of album folders (default: ${ENV_PHOTO_ROOT} or data/albums)")
    p.add_argument("--album", action="append", help="only this album (repeatable)")
    p.add_argument("--seed", type=int, default=tuning.DEFAULT_SEED, help="sampler seed (default 0)")
    p.add_argument("--references", metavar="NAMES",
                   help="synthetic pairs only: comma-separated benchmark references (default: all 15)")
    p.add_argument("--distortions", metavar="NAMES",
                   help="synthetic pairs only: comma-separated distortions (default: all)")
    add_clip_args(p, device=True)
    add_store_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from iqc_dagster.runner import RunFailed
    from iqc_dagster.runner import materialize_tuning, tuning_summary as summary_of

    if args.trials < 0:
        raise CLIError("--trials cannot be negative")
    labels = None
    if args.labels is not None:
        lp = args.labels.expanduser()
        if lp.is_dir():
            raise CLIError(f"labels CSV {lp} is a directory: pass the CSV file itself")
        if not lp.exists():
            raise CLIError(f"labels CSV {lp} does not exist")
        if not lp.is_file():
            raise CLIError(f"labels CSV {lp} is not a regular file")
        labels = str(lp.resolve())
    refs, dists = _names(args.references), _names(args.distortions)
    if refs or dists:
        from iqc_dagster.bench import benchmark, degrade

        bad = [r for r in refs or [] if r not in benchmark.REFERENCES]
        bad += [d for d in dists or [] if d not in degrade.DISTORTIONS]
        if bad:
            raise CLIError(f"unknown reference/distortion {', '.join(bad)}; references: "
                           f"{', '.join(benchmark.REFERENCES)}; distortions: "
                           f"{', '.join(degrade.DISTORTIONS)}")
    settings = settings_for(args, photo_root=args.photo_root)
    root = Path(settings.photo_root)
    if not root.is_dir():
        raise CLIError(f"photo root {root} does not exist or is not a directory (set {ENV_PHOTO_ROOT} or "
                       f"--photo-root)")
    albums = args.album or inventory.list_albums(root)
    with contextlib.redirect_stdout(sys.stderr):  # stdout is for the JSON line only
        done = []
        from iqc_dagster.core.clip import ModelCache

        clip_models = ModelCache()  # one CLIP model load for all the albums
        for album in albums_with_photos(root, albums)[0]:
            print(f"== {album}: features", flush=True)
            run_album(album, settings, quiet=args.quiet, clip_models=clip_models)
            done.append(album)
        print(f"features up to date for {len(done)} album(s); tuning …", flush=True)
        config = {"n_trials": args.trials, "labels_csv": labels, "use_clip": settings.clip.enabled,
                  "seed": args.seed, "synthetic_references": refs, "synthetic_distortions": dists}
        try:
            result = materialize_tuning(settings, config, log_level="WARNING" if args.quiet else "INFO")
        except RunFailed as exc:
            raise CLIError(str(exc)) from None
        summary = summary_of(result)
        verdict = ("later rankings will use them (run `iqc run` to re-rank)" if summary["used_for_ranking"]
                   else "not better than the defaults held-out: rankings keep the defaults")
        print(f"tuned weights {summary['weights_id']}: {verdict}. Details: "
              f"{(Path(settings.output_dir) / 'tuning').resolve()}", flush=True)
    print(json.dumps(summary, sort_keys=False), flush=True)
    return 0

"""``iqc models fetch|check``: get the CLIP model onto a machine once, and see which model a run would use.

Runs never download: a model is either a folder (``--clip-model DIR``) or a Hugging Face id already in
the local cache. ``iqc models fetch`` is the one command that talks to the hub; on an offline machine it
fails within seconds with one line saying so (see docs/clip.md).
"""

from __future__ import annotations

from iqc_dagster.cli import CLIError
from iqc_dagster.core import clip as clipcore


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="download the CLIP model for offline use, or check which one is used",
                       description="Manage the CLIP model behind the aesthetic score.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    f = msub.add_parser("fetch", help="download a CLIP model (needs internet); run once per machine",
                        description="Download a CLIP model into the Hugging Face cache, where runs find it by "
                                    "its id; with --dest also save a folder to copy to offline machines.")
    f.add_argument("--model", default=clipcore.DEFAULT_MODEL,
                   help=f"Hugging Face model id (default: {clipcore.DEFAULT_MODEL})")
    f.add_argument("--dest", metavar="DIR", help="also copy the model into DIR (use it with --clip-model DIR)")
    f.add_argument("--timeout", type=float, default=8.0, metavar="S",
                   help="seconds to wait for the hub to answer before giving up (default 8)")
    f.set_defaults(func=fetch)

    c = msub.add_parser("check", help="say which CLIP model a run would use, or why there is none",
                        description="Resolve the CLIP model exactly as a run does (no download) and print it. "
                                    "Exit status 0 when a model is available, 1 when not.")
    c.add_argument("--clip-model", metavar="ID_OR_DIR",
                   help=f"model to check (default: ${clipcore.ENV_MODEL} or {clipcore.DEFAULT_MODEL})")
    c.add_argument("--load", action="store_true", help="also load the model and embed one test image")
    c.add_argument("--clip-precision", choices=clipcore.PRECISIONS,
                   help=f"with --load: image-tower arithmetic (default: ${clipcore.ENV_PRECISION} or auto)")
    c.set_defaults(func=check)


def fetch(args) -> int:
    try:
        path = clipcore.fetch_model(args.model, args.dest, timeout=args.timeout)
    except clipcore.FetchError as exc:
        raise CLIError(f"cannot fetch {args.model}: {exc}. Run `iqc models fetch` on a machine with internet "
                       f"access (add --dest DIR and copy DIR here), then use --clip-model DIR.") from None
    print(f"{args.model} -> {path}")
    if args.dest:
        print(f"use it with: iqc rank --clip-model {path} ...   (or IQC_CLIP_MODEL={path})")
    else:
        print(f"runs on this machine now find {args.model} in the Hugging Face cache; "
              f"to use it offline elsewhere, fetch with --dest DIR and copy DIR")
    return 0


def check(args) -> int:
    import dataclasses

    try:
        settings = clipcore.ClipSettings.from_env()
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.clip_model:
        settings = dataclasses.replace(settings, model=args.clip_model)
    if args.clip_precision:
        settings = dataclasses.replace(settings, precision=args.clip_precision)
    source = clipcore.resolve_model(settings)
    print(source.message())
    print(f"(decided in {source.seconds * 1000:.0f} ms)")
    if not source.ready:
        return 1
    print(f"preprocessing: {source.preprocess.describe()}")
    if args.load:
        import numpy as np

        try:
            loaded = clipcore.load_model(source, settings.device, settings.precision)
        except clipcore.ClipLoadError as exc:
            raise CLIError(str(exc)) from None
        rgb = np.full((240, 320, 3), 128, np.uint8)
        emb = loaded.embed_images([loaded.prepare(rgb)])
        print(f"loaded in {loaded.load_seconds:.1f}s on {loaded.device} ({loaded.precision}); embedding dimension {emb.shape[1]}")
    return 0

"""``iqc benchmark``: the ranking-quality benchmark (real photos, graded distortions, CLIP off)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from iqc_dagster.cli import CLIError
from iqc_dagster.core.config import ENV_OUTPUT_DIR, Settings


def add_parser(sub) -> None:
    p = sub.add_parser(
        "benchmark", help="measure how well the scores rank real photos above degraded copies",
        description="Write real reference photos (scikit-image, scikit-learn, matplotlib; camera-sized ones "
                    "from Debian's lomiri-wallpapers) and graded distorted copies as JPEG files at several "
                    "sizes, rank each size's album through the same path as `iqc rank` (CLIP off) and with "
                    "the seed method; print pairwise accuracy, monotonicity, bokeh, harmless re-saves and "
                    "precision@K overall and per size, and write the tables, the per-image scores and a plot "
                    "to OUTPUT_DIR/benchmark/. Needs the dev extra and lomiri-wallpapers-16.04/-20.04.")
    p.add_argument("--references", nargs="+", metavar="NAME",
                   help="reference photos to use (default: the calibration and held-out ones); an unknown "
                        "name lists the known ones")
    p.add_argument("--sizes", nargs="+", type=int, metavar="PX",
                   help="long sides of the photo files (default: 640 1024 1600 2048 3000 4000 6000); a "
                        "reference is used at a size it reaches with at most 2x enlargement")
    p.add_argument("--work-dir",
                   help="keep the generated photo files here and reuse them next time (default: a temporary "
                        "folder, removed; the full set is about 3 GB)")
    p.add_argument("--distortions", nargs="+", metavar="NAME",
                   help="graded distortions to apply (default: all seven)")
    p.add_argument("--output-dir",
                   help=f"where benchmark/ is written (default: ${ENV_OUTPUT_DIR} or output/)")
    p.add_argument("--no-write", action="store_true", help="only print, write no files")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from iqc_dagster.bench import benchmark

    refs = args.references or list(benchmark.DEFAULT_REFERENCES)
    unknown = [r for r in refs if r not in benchmark.REFERENCES]
    if unknown:
        raise CLIError(f"unknown reference(s) {', '.join(unknown)}; known: {', '.join(benchmark.REFERENCES)}")
    bad = [d for d in (args.distortions or []) if d not in benchmark.degrade.DISTORTIONS]
    if bad:
        known = ", ".join(benchmark.degrade.DISTORTIONS)
        raise CLIError(f"unknown distortion(s) {', '.join(bad)}; known: {known}")
    sizes = args.sizes or list(benchmark.SIZES)
    if any(s < 16 or s > 20000 for s in sizes):
        raise CLIError("--sizes: long sides between 16 and 20000 px")
    if not args.json:
        print(f"benchmark: {len(refs)} reference(s) at {len(sizes)} size(s), scoring every copy "
              "(the full set takes 10-25 min on 2 cores the first time, a few minutes with --work-dir kept)...",
              file=sys.stderr)
    try:
        result = benchmark.run_benchmark(refs, sizes=sizes, distortions=args.distortions, work_dir=args.work_dir,
                                         progress=None if args.json else (lambda m: print(m, file=sys.stderr)))
    except benchmark.BenchmarkUnavailable as exc:
        raise CLIError(str(exc)) from None
    paths = {}
    if not args.no_write:
        out = Path(args.output_dir or Settings.from_env().output_dir) / "benchmark"
        paths = benchmark.write_outputs(result, out)
    if args.json:
        table = result.table.drop(index=["n_references"], errors="ignore")
        payload = {"references": result.references,
                   "metrics": {c: {k: (None if v != v else round(float(v), 4)) for k, v in table[c].items()}
                               for c in table.columns},
                   "by_size": json.loads(result.by_size.round(4).to_json(orient="records")),
                   "files": {k: str(v.resolve()) for k, v in paths.items()}}
        print(json.dumps(payload, indent=2))
        return 0
    print(benchmark.format_table(result.table))
    print("\nper size (iqc):")
    print(benchmark.format_size_table(result.by_size))
    if paths:
        print(f"\ntable: {paths['table'].resolve()}\nby size: {paths['by_size'].resolve()}\n"
              f"images: {paths['images'].resolve()}\nplot: {paths['plot'].resolve()}")
    return 0

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
        description="Score real reference photos (scikit-image, scikit-learn, matplotlib) and graded "
                    "distorted copies with the product's scores (CLIP off) and with the seed method; print "
                    "pairwise accuracy, monotonicity, bokeh and precision@K, and write the table, the "
                    "per-image scores and a plot to OUTPUT_DIR/benchmark/. Needs the dev extra.")
    p.add_argument("--references", nargs="+", metavar="NAME",
                   help="reference photos to use (default: the 15 calibration and held-out ones); an unknown "
                        "name lists the known ones")
    p.add_argument("--distortions", nargs="+", metavar="NAME",
                   help="graded distortions to apply (default: all seven)")
    p.add_argument("--output-dir",
                   help=f"where benchmark/ is written (default: ${ENV_OUTPUT_DIR} or output/)")
    p.add_argument("--no-write", action="store_true", help="only print, write no files")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from iqc_dagster.core import benchmark

    refs = args.references or list(benchmark.DEFAULT_REFERENCES)
    unknown = [r for r in refs if r not in benchmark.REFERENCES]
    if unknown:
        raise CLIError(f"unknown reference(s) {', '.join(unknown)}; known: {', '.join(benchmark.REFERENCES)}")
    bad = [d for d in (args.distortions or []) if d not in benchmark.degrade.DISTORTIONS]
    if bad:
        known = ", ".join(benchmark.degrade.DISTORTIONS)
        raise CLIError(f"unknown distortion(s) {', '.join(bad)}; known: {known}")
    if not args.json:
        print(f"benchmark: {len(refs)} reference(s), scoring every copy (this takes a while)...",
              file=sys.stderr)
    try:
        result = benchmark.run_benchmark(refs, distortions=args.distortions)
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
                   "files": {k: str(v.resolve()) for k, v in paths.items()}}
        print(json.dumps(payload, indent=2))
        return 0
    print(benchmark.format_table(result.table))
    if paths:
        print(f"\ntable: {paths['table'].resolve()}\nimages: {paths['images'].resolve()}\n"
              f"plot: {paths['plot'].resolve()}")
    return 0

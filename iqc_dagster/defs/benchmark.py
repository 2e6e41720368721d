"""The ``ranking_quality_benchmark`` asset: does the ranking put the better photo first?

Thin: it calls :func:`iqc_dagster.bench.benchmark.run_benchmark` and writes the metrics tables, the
per-image scores and a plot under ``$IQC_OUTPUT_DIR/benchmark/``. Unpartitioned, in group
``evaluation``; it needs the dev extra (scikit-image, scikit-learn) and Debian's lomiri-wallpapers
packages for its reference photos.
"""

import time
from pathlib import Path

import dagster as dg

from iqc_dagster.bench import benchmark
from iqc_dagster.defs import keys
from iqc_dagster.defs.metadata import md_table
from iqc_dagster.defs.resources import IQCSettings


class BenchmarkConfig(dg.Config):
    """Which part of the benchmark to run; the defaults run all of it."""

    references: list[str] = []  # empty: the default set (calibration + held-out references)
    sizes: list[int] = []  # long sides of the photo files; empty: 640, 1024, 1600, 2048, 3000, 4000, 6000
    distortions: list[str] = []  # empty: every graded distortion
    levels: list[int] = [1, 2, 3]
    workers: int = 0  # 0: one per core, at most 4
    work_dir: str = ""  # keep the generated photo files here for the next run (empty: a temporary folder)


def _headline(result: benchmark.BenchmarkResult) -> dict:
    t = result.table
    meta = {}
    for col in t.columns:
        method, split = col.split(":")
        for metric in ("pairwise_all", "monotonicity_all", "bokeh_above_soft", "precision_at_k",
                       "precision_at_k_aligned", "best_pick_precision_at_k", "copies_grouped"):
            v = t.loc[metric, col]
            if v == v:  # not NaN
                meta[f"{method}/{split}/{metric}"] = round(float(v), 4)
    return meta


@dg.asset(
    key=keys.RANKING_QUALITY_BENCHMARK, group_name=keys.EVALUATION_GROUP, kinds={"python", "csv", "matplotlib"},
    description="Ranking-quality benchmark (CLIP off): real reference photos (scikit-image, scikit-learn, "
                "matplotlib; Debian's lomiri-wallpapers for camera-sized ones) written as JPEG files at "
                "640-6000 px with graded blur, noise, JPEG, exposure and contrast distortions, a bokeh pair "
                "and harmless re-saves, ranked through the same path as iqc rank. Pairwise accuracy, "
                "monotonicity, bokeh, precision@K per size and orientation for the product's final_score and "
                "the seed method; tables and plot under $IQC_OUTPUT_DIR/benchmark/.",
)
def ranking_quality_benchmark(context: dg.AssetExecutionContext, config: BenchmarkConfig,
                              iqc: IQCSettings) -> dg.MaterializeResult:
    t0 = time.monotonic()
    try:
        result = benchmark.run_benchmark(config.references or None, sizes=tuple(config.sizes or benchmark.SIZES),
                                         distortions=config.distortions or None, levels=tuple(config.levels),
                                         workers=config.workers or None, work_dir=config.work_dir or None,
                                         progress=context.log.info)
    except (benchmark.BenchmarkUnavailable, KeyError) as exc:
        raise dg.Failure(description=str(exc).strip("'\"")) from None
    paths = benchmark.write_outputs(result, iqc.out_dir() / "benchmark")
    seconds = time.monotonic() - t0
    context.log.info(f"ranking benchmark: {len(result.frame)} images from {len(result.references)} "
                     f"references in {seconds:.1f}s -> {paths['table']}")
    table_md = md_table(result.table.drop(index=["n_references"], errors="ignore").round(3), None, index=True)
    size_md = md_table(result.by_size.round(3), None, empty="")
    return dg.MaterializeResult(metadata={
        "table": table_md,
        "by_size": size_md,
        "by_size_csv": dg.MetadataValue.path(str(paths["by_size"].resolve())),
        "table_csv": dg.MetadataValue.path(str(paths["table"].resolve())),
        "images_csv": dg.MetadataValue.path(str(paths["images"].resolve())),
        "plot": dg.MetadataValue.path(str(paths["plot"].resolve())),
        "references": ", ".join(result.references),
        "n_images": len(result.frame),
        "seconds": round(seconds, 1),
        **_headline(result),
    })


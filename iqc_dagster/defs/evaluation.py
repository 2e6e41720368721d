"""Stage 5, per album: ``evaluation_report`` — proxy metrics (stored in DuckDB), histograms, montages and
an HTML report of the ranked CSV — with its check declared on the asset.

Rendering runs outside the DuckDB pool; only the metrics row is written to the database. (The
unpartitioned ``ranking_quality_benchmark`` of the same group is in :mod:`.benchmark`.)
"""

import io

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import inventory, metrics, report, store
from iqc_dagster.defs import keys
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import IQCSettings, db

REPORT_CHECK = dg.AssetCheckSpec(
    "report_is_complete", asset=keys.EVALUATION_REPORT,
    description="The report folder holds index.html, the montages and one histogram per score; every photo "
                "on the review page has its thumbs/ and large/ file and the page shows every ranked photo; "
                "the stored metrics match the ranked CSV.")


@dg.asset(
    key=keys.EVALUATION_REPORT, partitions_def=albums_partitions, group_name=keys.EVALUATION_GROUP,
    kinds={"python", "matplotlib", "html"}, deps=[keys.RANKED_PHOTOS], check_specs=[REPORT_CHECK],
    description="Per album: proxy metrics (score_std, duplicate_fraction, sharpness_corr, counts) stored in "
                "DuckDB, a histogram per score, top-K and bottom-K montages with scores and reasons, and the "
                "self-contained review page (a culling gallery that exports labels for `iqc tune`) under "
                "$IQC_OUTPUT_DIR/reports/<album>/index.html.",
)
def evaluation_report(context: dg.AssetExecutionContext, iqc: IQCSettings,
                      duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    csv_path = iqc.csv_path(album)
    csv_bytes = csv_path.read_bytes()
    ranked = pd.read_csv(io.BytesIO(csv_bytes))  # the bytes the report's reuse stamp is taken from
    with db(duckdb) as conn:
        n_unreadable = int(inventory.unreadable(store.album_photos(conn, album)).sum())
        aesthetic = store.aesthetic_status(conn, album) or {}
    notes = [aesthetic["message"]] if aesthetic.get("status") in ("skipped", "off") and aesthetic.get("message") else []
    m = metrics.proxy_metrics(ranked, n_unreadable=n_unreadable)
    folder = report.report_folder(iqc.out_dir(), album)
    files, reused = report.write_report_if_changed(ranked, folder, album=album, source=csv_bytes, metrics=m,
                                                   notes=notes, n_unreadable=n_unreadable)
    with db(duckdb) as conn:
        store.save_album_metrics(conn, album, m, str(files.index))
    if files.media_restored:
        context.log.warning(f"{album}: {files.media_restored} thumbnail/large-view file(s) of the report were "
                            f"missing: made again")
    context.log.info(f"{album}: report {'unchanged' if reused else 'written'} -> {files.index}; metrics {m}")
    return dg.MaterializeResult(metadata={
        "reused": reused, "media_restored": files.media_restored,
        **{k: v for k, v in m.items() if v is not None},
        "report": dg.MetadataValue.path(str(files.index.resolve())),
        "review_page": dg.MetadataValue.url(files.index.resolve().as_uri()),
        "top_picks": dg.MetadataValue.md(report.top_picks_markdown(ranked, report.MARKDOWN_TOP)),
        "top_montage": dg.MetadataValue.path(str(files.top.resolve())),
        "notes": "; ".join(notes),
    }, check_results=[_report_check(folder, ranked, m)])


def _report_check(folder, ranked: pd.DataFrame, m: dict) -> dg.AssetCheckResult:
    problems = [f"missing {n}" for n in ("index.html", "top.png", "bottom.png") if not (folder / n).is_file()]
    problems += [f"missing hist_{c}.png" for c in report.score_columns(ranked) if not (folder / f"hist_{c}.png").is_file()]
    if m.get("n_ranked") != len(ranked):
        problems.append(f"stored n_ranked {m.get('n_ranked')} != {len(ranked)} CSV rows")
    media = report.media_status(folder)
    if media is None:
        if (folder / "index.html").is_file():
            problems.append("index.html holds no review page data")
    else:
        problems += report.media_problems(media, len(ranked))
    return dg.AssetCheckResult(check_name=REPORT_CHECK.name, passed=not problems,
                               severity=dg.AssetCheckSeverity.WARN, metadata={
                                   "problems": "; ".join(problems),
                                   "n_media_missing": len(media.missing) if media else 0,
                                   "n_photos_without_media": (len(media.photos_missing) + len(media.placeholders)
                                                              if media else 0)})

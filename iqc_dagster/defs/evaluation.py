"""Per-album duplicate/burst groups and the evaluation report (histograms, montages, HTML, proxy metrics)."""

import hashlib
import json

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import brackets, dedup, metrics, names, raw, report, store
from iqc_dagster.core.files import write_atomic
from iqc_dagster.defs import clip as clipdefs
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import DUCKDB_POOL, ClipResource, IQCSettings, db

GROUP = "albums"
TECHNICAL_FEATURES = dg.AssetKey("technical_features")


@dg.asset(
    partitions_def=albums_partitions, pool=DUCKDB_POOL, group_name=GROUP, kinds={"python", "duckdb"},
    deps=[TECHNICAL_FEATURES, clipdefs.CLIP_EMBEDDINGS],
    description="Near-duplicate and burst groups: connected components of photos whose perceptual hashes "
                "are close, whose CLIP embeddings are very similar (when a model is available), or that were "
                "taken seconds apart and look alike (docs/evaluation.md). The ranking marks each group's "
                "best pick; nothing is hidden or deleted.",
)
def duplicate_groups(context: dg.AssetExecutionContext, clip: ClipResource, iqc: IQCSettings,
                     duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    source = clip.resolve()
    with db(duckdb) as conn:
        table = store.album_hash_rows(conn, album, dedup.PHASH_VERSION)
        emb_note = "no CLIP model: groups from perceptual hashes and capture times only"
        if source.ready:
            photos, matrix = store.album_embeddings(conn, album, source.model_id)
            if len(matrix):
                vecs = iter(matrix)
                by_path = {p: (next(vecs) if h else None) for p, h in zip(photos["path"], photos["has_embedding"])}
                table["embedding"] = table["path"].map(by_path)
                emb_note = f"with CLIP embeddings of {source.model_id}"
    table["file"] = table["path"]
    table["phash"] = table.pop("hashes")
    table["final_score"] = 0.0  # membership does not depend on scores; ranked_photos picks the best
    # exposure brackets and focus stacks, from EXIF (header reads): kept whole, never "duplicates"
    folder = iqc.album_dir(album)
    cand = np.flatnonzero(brackets.candidates(table["captured_at"]))  # runs of frames seconds apart
    sequences = []
    if cand.size:
        exif = brackets.read_exif([folder / names.from_key(p) for p in table["path"].to_numpy()[cand]])
        exif["captured_at"] = table["captured_at"].to_numpy()[cand]
        exif["path"] = table["path"].to_numpy()[cand]
        sequences = [([int(cand[i]) for i in rows], kind) for rows, kind in brackets.find_sequences(exif)]
    grouped = dedup.group_photos(table, sequences=sequences)
    if sequences:
        context.log.info(f"{album}: {len(sequences)} exposure bracket(s)/focus stack(s) from EXIF: "
                         + ", ".join(f"{k} of {len(r)}" for r, k in sequences[:10]))
    rows = pd.DataFrame({"album": album, "path": grouped["path"], "group_key": grouped["group_id"],
                         "group_kind": grouped["group_kind"]})
    with db(duckdb) as conn:
        store.replace_album_rows(conn, "photo_groups", album, rows)
    summary = dedup.group_summary(grouped)
    n_unhashed = int(table["phash"].isna().sum())
    if n_unhashed:
        context.log.warning(f"{n_unhashed} photo(s) have no perceptual hash; they are grouped by CLIP/time only")
    context.log.info(f"{album}: {summary['n_grouped_photos']} of {len(grouped)} photos in "
                     f"{summary['n_groups']} duplicate/burst group(s) ({emb_note})")
    multi = grouped[grouped["group_size"] > 1].sort_values(["group_id", "path"])
    return dg.MaterializeResult(metadata={
        "n_photos": len(grouped),
        "n_groups": summary["n_groups"],  # groups of 2 or more photos
        "n_grouped_photos": summary["n_grouped_photos"],
        "n_unhashed": n_unhashed,
        "signals": emb_note,
        "thresholds": dg.MetadataValue.json(dedup.DEFAULT_THRESHOLDS.__dict__),
        "groups": dg.MetadataValue.md(multi[["group_id", "group_kind", "path"]].head(40).to_markdown(index=False)
                                      if not multi.empty else "_no duplicates or bursts_"),
    })


@dg.asset(
    partitions_def=albums_partitions, pool=DUCKDB_POOL, group_name="evaluation",
    kinds={"python", "matplotlib", "html"}, deps=[dg.AssetKey("ranked_photos")],
    description="Per album: proxy metrics (score_std, duplicate_fraction, sharpness_corr, counts) stored in "
                "DuckDB, a histogram per score, top-K and bottom-K montages with scores and reasons, and a "
                "self-contained HTML report under $IQC_OUTPUT_DIR/reports/<album>/.",
)
def evaluation_report(context: dg.AssetExecutionContext, iqc: IQCSettings,
                      duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    csv_path = iqc.csv_path(album)
    csv_bytes = csv_path.read_bytes()
    ranked = pd.read_csv(csv_path)
    with db(duckdb) as conn:
        n_unreadable = int((~store.album_photos(conn, album)["status"].isin(["ok", raw.COMPANION_STATUS])).sum())
        aesthetic = store.aesthetic_status(conn, album) or {}
    notes = [aesthetic["message"]] if aesthetic.get("status") in ("skipped", "off") and aesthetic.get("message") else []
    m = metrics.proxy_metrics(ranked, n_unreadable=n_unreadable)
    folder = report.report_folder(iqc.out_dir(), album)
    # The report is a pure function of the ranked CSV, the notes and the unreadable count: when none of
    # them changed since the last report (an unchanged album re-run), the files on disk are reused.
    source_id = hashlib.sha1(csv_bytes + json.dumps([notes, n_unreadable, report.REPORT_VERSION]).encode()).hexdigest()
    stamp = folder / ".iqc-source"
    files = report.existing_report(folder)
    reused = files is not None and stamp.is_file() and stamp.read_text().strip() == source_id
    if not reused:
        files = report.write_report(ranked, folder, album=album, metrics=m, notes=notes)
        write_atomic(stamp, source_id.encode())
    with db(duckdb) as conn:
        store.save_album_metrics(conn, album, m, str(files.index))
    context.log.info(f"{album}: report {'unchanged' if reused else 'written'} -> {files.index}; metrics {m}")
    return dg.MaterializeResult(metadata={
        "reused": reused,
        **{k: v for k, v in m.items() if v is not None},
        "report": dg.MetadataValue.path(str(files.index.resolve())),
        "top_montage": dg.MetadataValue.path(str(files.top.resolve())),
        "notes": "; ".join(notes),
    })


@dg.asset_check(asset=evaluation_report, partitions_def=albums_partitions,
                description="The report folder holds index.html, the montages and one histogram per score, "
                            "and the stored metrics match the ranked CSV.")
def report_is_complete(context: dg.AssetCheckExecutionContext, iqc: IQCSettings,
                       duckdb: DuckDBResource) -> dg.AssetCheckResult:
    album = context.op_execution_context.partition_key
    folder = report.report_folder(iqc.out_dir(), album)
    ranked = pd.read_csv(iqc.csv_path(album))
    with db(duckdb) as conn:
        m = store.album_metrics(conn, album) or {}
    problems = [f"missing {n}" for n in ("index.html", "top.png", "bottom.png") if not (folder / n).is_file()]
    problems += [f"missing hist_{c}.png" for c in report.score_columns(ranked) if not (folder / f"hist_{c}.png").is_file()]
    if m.get("n_ranked") != len(ranked):
        problems.append(f"stored n_ranked {m.get('n_ranked')} != {len(ranked)} CSV rows")
    return dg.AssetCheckResult(passed=not problems, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"problems": "; ".join(problems)})


evaluation_assets = [duplicate_groups, evaluation_report]
evaluation_checks = [report_is_complete]

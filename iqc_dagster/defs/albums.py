"""Per-album assets (partitioned by the dynamic partition ``albums``) and the checks beside them.

Each asset reads what it needs from DuckDB, calls the pure core, and writes its rows back in short
transactions. Nothing here decodes pixels or computes a score itself.
"""


import math
import os
import time

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import analysis, dedup, fusion, inventory, names, ranking, raw, reasons, store
from iqc_dagster.core import features as feat
from iqc_dagster.defs import clip as clipdefs
from iqc_dagster.defs import evaluation as evaldefs
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import DUCKDB_POOL, ClipResource, IQCSettings, db
from iqc_dagster.defs.weights import current_weights, ranking_weights

GROUP = "albums"


def _md_table(df: pd.DataFrame, limit: int = 10) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.head(limit).to_markdown(index=False) if not df.empty else "_none_")


def _feature_versions() -> dict[str, str]:
    return {name: f.cache_version for name, f in feat.FEATURES.items()}


@dg.asset(
    partitions_def=albums_partitions, pool=DUCKDB_POOL, group_name=GROUP, kinds={"python", "duckdb"},
    description="Every photo file in the album: size, format, EXIF orientation and capture time, content "
                "hash, and status ok/unreadable with a reason. Unchanged files (same size and mtime) are "
                "not re-read.",
)
def image_inventory(context: dg.AssetExecutionContext, iqc: IQCSettings,
                    duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    folder = iqc.album_dir(album)
    if not folder.is_dir():
        raise dg.Failure(description=f"album folder {names.display(folder)} does not exist (photo root: "
                                     f"{names.display(iqc.photo_root)})")
    folder_key = names.to_key(str(folder))
    with db(duckdb) as conn:
        known = store.album_folder(conn, album)
        if known and known != folder_key and os.path.isdir(names.from_key(known)):
            # two folders of one name (c1/trip, c2/trip): never let the second replace the first's rows
            raise dg.Failure(description=(
                f"the album name {names.display(album)!r} already stands for the folder {names.display(known)} "
                f"in this database, and {names.display(folder)} has the same name: rank it under another name "
                f"(iqc rank --album NAME) or with another --db and --output-dir"))
        store.save_album_folder(conn, album, folder_key)
        previous = store.album_photos(conn, album)
    t0 = time.monotonic()
    df = inventory.scan_album(folder, album, previous, scanned_at=store.now(),
                              progress=analysis.throttled(context.log.info, label=f"inventory {album}"))
    with db(duckdb) as conn:
        store.replace_album_rows(conn, "photos", album, df)
    bad = df[~df["status"].isin(["ok", raw.COMPANION_STATUS])]
    for row in bad.itertuples():
        context.log.warning(f"unreadable: {names.display(row.path)}: {row.reason}")
    context.log.info(f"{album}: {len(df)} files, {len(df) - len(bad)} readable, {len(bad)} unreadable "
                     f"({time.monotonic() - t0:.1f}s)")
    return dg.MaterializeResult(metadata={
        "album_dir": dg.MetadataValue.path(str(folder)),
        "n_files": len(df),
        "n_ok": int((df["status"] == "ok").sum()),
        "n_unreadable": len(bad),
        "unreadable": _md_table(bad[["path", "reason"]], 20),
    })


@dg.asset_check(asset=image_inventory, partitions_def=albums_partitions,
                description="Unreadable photos are counted and each has a reason; they are never fatal.")
def unreadable_photos_have_reasons(context: dg.AssetCheckExecutionContext,
                                   duckdb: DuckDBResource) -> dg.AssetCheckResult:
    album = context.op_execution_context.partition_key
    with db(duckdb) as conn:
        df = store.album_photos(conn, album)
    bad = df[~df["status"].isin(["ok", raw.COMPANION_STATUS])]
    missing = bad[bad["reason"].isna() | (bad["reason"].astype(str).str.len() == 0)]
    return dg.AssetCheckResult(
        passed=missing.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"n_unreadable": len(bad), "n_without_reason": len(missing)})


TECHNICAL_FEATURES = dg.AssetKey("technical_features")


@dg.multi_asset(
    name="analyze_photos",
    specs=[
        dg.AssetSpec(
            TECHNICAL_FEATURES, deps=[image_inventory], partitions_def=albums_partitions, group_name=GROUP,
            kinds={"python", "opencv", "duckdb"},
            description="Raw technical measurements (sharpness, exposure, contrast, faces) per photo, decoded "
                        "once and cached in DuckDB by content hash + feature version: only new or changed "
                        "photos are computed."),
        dg.AssetSpec(
            clipdefs.CLIP_EMBEDDINGS, deps=[image_inventory], partitions_def=albums_partitions,
            group_name=GROUP, kinds={"pytorch", "duckdb"},
            description="CLIP image embeddings (L2-normalised FLOAT[]) per photo, cached in DuckDB by content "
                        "hash + model id and shared across runs and albums: only photos not yet embedded "
                        "with this model are computed. Prepared from the same decode as the technical "
                        "features. Skipped, saying why, when no CLIP model is available."),
    ],
    partitions_def=albums_partitions, can_subset=True, pool=DUCKDB_POOL,
    description="Decode each photo once and feed both technical_features and clip_embeddings.",
)
def analyze_photos(context: dg.AssetExecutionContext, iqc: IQCSettings, clip: ClipResource,
                   duckdb: DuckDBResource):
    album = context.partition_key
    folder = iqc.album_dir(album)
    selected = context.selected_asset_keys
    do_features = TECHNICAL_FEATURES in selected
    do_clip = clipdefs.CLIP_EMBEDDINGS in selected
    versions = _feature_versions() if do_features else {}
    with db(duckdb) as conn:
        photos = store.album_photos(conn, album, only_ok=True)
        have = store.existing_features(conn, photos["content_hash"], versions) if do_features else set()
        have_hashes = (store.existing_hashes(conn, photos["content_hash"], dedup.PHASH_VERSION)
                       if do_features else set())
    paths_by_hash: dict[str, list[str]] = {}
    for p, h in zip(photos["path"], photos["content_hash"]):
        paths_by_hash.setdefault(h, []).append(p)
    cp = clipdefs.ClipPass(context, clip, list(paths_by_hash), lambda: db(duckdb)) if do_clip else None
    tasks = []
    feature_hashes: set[str] = set()
    for h, paths in paths_by_hash.items():
        todo = tuple(n for n in versions if (h, n) not in have)
        want_clip = cp is not None and h in cp.todo
        want_hashes = do_features and h not in have_hashes
        if todo:
            feature_hashes.add(h)
        if todo or want_clip or want_hashes:
            tasks.append(analysis.PhotoTask(content_hash=h, path=folder / names.from_key(paths[0]), rel_path=paths[0],
                                            features=todo, want_clip=want_clip, want_hashes=want_hashes))
    if do_features:
        context.log.info(f"{album}: {len(paths_by_hash)} distinct photos, {len(feature_hashes)} to analyse, "
                         f"{len(paths_by_hash) - len(feature_hashes)} cached")
    t0 = time.monotonic()
    progress = analysis.throttled(context.log.info, label=f"analysis {album}")
    failed: dict[str, str] = {}
    failed_hashes: set[str] = set()
    # Overlap decoding with embedding only when the embedding runs on an accelerator: on CPU both would
    # compete for the same cores (measured: no gain on 2 cores, see docs/benchmarks.md).
    prefetch = bool(cp and cp.on_accelerator)
    stages: dict[str, float] = {}
    for batch in analysis.analyze(tasks, clip_prepare=cp.prepare if cp else None, prefetch=prefetch):
        for k, v in batch.timings.items():
            stages[k] = stages.get(k, 0.0) + v
        bad_paths = {p: reason for h, reason in batch.errors.items() for p in paths_by_hash[h]}
        t = time.perf_counter()
        emb_hashes, emb = cp.embed(batch) if cp else ([], None)  # no DB connection held while embedding
        t_db = time.perf_counter()
        with db(duckdb) as conn:
            store.write_features(conn, batch.feature_rows)
            store.write_hashes(conn, dedup.PHASH_VERSION, batch.hash_rows)
            store.mark_unreadable(conn, album, bad_paths)
            if cp:
                cp.write(conn, emb_hashes, emb)
        stages["clip_embed"] = stages.get("clip_embed", 0.0) + (t_db - t)
        stages["db_write"] = stages.get("db_write", 0.0) + (time.perf_counter() - t_db)
        for p, reason in bad_paths.items():
            context.log.warning(f"unreadable: {names.display(p)}: {reason}")
        failed.update(bad_paths)
        failed_hashes.update(batch.errors)
        progress(batch.done, batch.total)
    elapsed = time.monotonic() - t0
    if do_features:
        n_feat = len(feature_hashes)
        yield dg.MaterializeResult(asset_key=TECHNICAL_FEATURES, metadata={
            "n_photos": len(photos),
            "n_computed": n_feat - len(feature_hashes & failed_hashes),
            "n_cached": len(paths_by_hash) - n_feat,
            "n_failed": len(failed),
            "seconds": round(elapsed, 2),
            "photos_per_second": round(n_feat / elapsed, 1) if elapsed > 0 and n_feat else 0.0,
            "feature_versions": dg.MetadataValue.json(versions),
            # decode and features: thread-seconds summed over the worker threads; clip_embed, db_write: wall
            "stage_seconds": dg.MetadataValue.json({k: round(v, 3) for k, v in sorted(stages.items())}),
        })
    if cp is not None:
        yield dg.MaterializeResult(asset_key=clipdefs.CLIP_EMBEDDINGS,
                                   metadata=cp.metadata(len(photos), failed_hashes))


@dg.asset_check(asset=TECHNICAL_FEATURES, partitions_def=albums_partitions, blocking=True,
                description="Every readable photo in the inventory has every feature at its current version "
                            "and its perceptual hashes.")
def every_photo_has_features(context: dg.AssetCheckExecutionContext,
                             duckdb: DuckDBResource) -> dg.AssetCheckResult:
    album = context.op_execution_context.partition_key
    versions = _feature_versions()
    with db(duckdb) as conn:
        photos = store.album_photos(conn, album, only_ok=True)
        have = store.existing_features(conn, photos["content_hash"], versions)
        hashed = store.existing_hashes(conn, photos["content_hash"], dedup.PHASH_VERSION)
    missing = [p for p, h in zip(photos["path"], photos["content_hash"])
               if h not in hashed or any((h, n) not in have for n in versions)]
    return dg.AssetCheckResult(passed=not missing, metadata={
        "n_ok_photos": len(photos), "n_missing": len(missing), "missing": ", ".join(missing[:20])})


@dg.asset(
    partitions_def=albums_partitions, pool=DUCKDB_POOL, group_name=GROUP, kinds={"python", "duckdb"},
    deps=[TECHNICAL_FEATURES],
    description="Calibrated [0, 1] scores per photo (higher is better). The mapping is absolute, not "
                "relative to the album, so adding a photo never reorders the others. (The 'aesthetic' "
                "score beside them is written by aesthetic_scores.)",
)
def normalized_features(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    with db(duckdb) as conn:
        long = store.album_features(conn, album, _feature_versions())
        rows = ranking.normalized_rows(album, long)
        store.replace_album_scores(conn, album, rows, keep={clipdefs.AESTHETIC})
    summary = ranking.score_summary(rows)
    return dg.MaterializeResult(metadata={
        "n_photos": int(rows["path"].nunique()) if not rows.empty else 0,
        "summary": _md_table(summary, 50),
    })


@dg.asset_check(asset=normalized_features, partitions_def=albums_partitions, blocking=True,
                description="Every normalised score is finite and within [0, 1].")
def scores_finite_in_unit_range(context: dg.AssetCheckExecutionContext,
                                duckdb: DuckDBResource) -> dg.AssetCheckResult:
    album = context.op_execution_context.partition_key
    with db(duckdb) as conn:
        wide = store.album_scores(conn, album)
    cols = [c for c in fusion.score_columns().values() if c in wide.columns]
    bad = []
    for c in cols:
        v = wide[c].dropna().astype(float)
        n_bad = int((~v.map(math.isfinite) | (v < 0) | (v > 1)).sum())
        if n_bad:
            bad.append(f"{c}: {n_bad}")
    return dg.AssetCheckResult(passed=not bad, metadata={"columns": ", ".join(cols), "violations": "; ".join(bad)})


@dg.asset(
    partitions_def=albums_partitions, pool=DUCKDB_POOL, group_name=GROUP, kinds={"python", "duckdb", "csv"},
    deps=[normalized_features, clipdefs.aesthetic_scores, evaldefs.duplicate_groups, ranking_weights],
    description="The album ranked by final_score (weighted fusion of the scores), written to "
                "$IQC_OUTPUT_DIR/csvs/<album>.csv and to DuckDB, with the weights that produced it.",
)
def ranked_photos(context: dg.AssetExecutionContext, iqc: IQCSettings,
                  duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    folder = iqc.album_dir(album)
    with db(duckdb) as conn:
        weights = current_weights(conn)
        scores = store.album_scores(conn, album)
        photos = store.album_photos(conn, album)
        aesthetic = store.aesthetic_status(conn, album) or {"status": "unknown", "message": ""}
        groups = store.album_groups(conn, album)
        hash_rows = store.album_hash_rows(conn, album, dedup.PHASH_VERSION)
    markers = {p: m for p, h in zip(hash_rows["path"], hash_rows["hashes"]) if (m := dedup.no_detail_marker(h))}
    ranked, result = ranking.build_ranking(scores, folder, weights) if not scores.empty else (
        pd.DataFrame(columns=ranking.CSV_COLUMNS), None)
    if not ranked.empty:
        ranked = ranking.demote_no_detail(ranked, markers)
        ranked = ranking.order_columns(reasons.add_reasons(ranking.apply_groups(ranked, groups)))
        pairs = raw.companions_of(photos)  # RAW + JPEG: the other file of the shot, listed with it
        ranked["companions"] = [";".join(pairs.get(f, [])) for f in ranked["file"]]
    for note in (result.notes if result else []):
        context.log.warning(note)
    csv_path = ranking.write_csv_atomic(ranked, iqc.csv_path(album))
    skipped = photos[~photos["status"].isin(["ok", raw.COMPANION_STATUS])][["path", "reason"]].rename(columns={"path": "file"})
    skipped_path = ranking.write_csv_atomic(skipped, iqc.skipped_csv_path(album))
    db_rows = pd.DataFrame({
        "album": album, "path": ranked["file"], "content_hash": ranked.get("content_hash"),
        "rank": ranked["rank"], "final_score": ranked["final_score"], "weights_id": weights.weights_id,
        "ranked_at": store.now()}) if not ranked.empty else pd.DataFrame()
    with db(duckdb) as conn:
        store.save_weights(conn, weights.weights_id, weights.source, weights.values)
        store.replace_album_rows(conn, "rankings", album, db_rows)
    if markers:
        context.log.info(f"{album}: {len(markers)} blank or tiny frame(s) ranked last")
    context.log.info(f"{album}: ranked {len(ranked)} photos -> {csv_path}")
    top = ranked[["rank", "file", "final_score"]].head(5) if not ranked.empty else ranked
    return dg.MaterializeResult(metadata={
        "csv": dg.MetadataValue.path(str(csv_path.resolve())),
        "skipped_csv": dg.MetadataValue.path(str(skipped_path.resolve())),
        "n_ranked": len(ranked),
        "n_skipped": len(skipped),
        "n_raw_skipped": sum(inventory.imaging.is_raw_name(str(f)) for f in skipped["file"]),
        "n_raw_jpeg_pairs": int((photos["status"] == raw.COMPANION_STATUS).sum()),
        "n_no_detail": len(markers),
        "top5": _md_table(top, 5),
        "weights_id": weights.weights_id,
        "weights_source": weights.source,
        "effective_weights": dg.MetadataValue.json(result.effective_weights if result else {}),
        "notes": "; ".join(([aesthetic["message"]] if aesthetic["status"] in ("skipped", "off") else [])
                           + (result.notes if result else [])),
        "aesthetic_status": aesthetic["status"],
    })


@dg.asset_check(asset=ranked_photos, partitions_def=albums_partitions, blocking=True,
                description="Ranks are exactly 1..N over the album's readable photos, scores in [0, 1], "
                            "and the CSV holds the same N rows in rank order.")
def ranks_are_one_to_n(context: dg.AssetCheckExecutionContext, iqc: IQCSettings,
                       duckdb: DuckDBResource) -> dg.AssetCheckResult:
    album = context.op_execution_context.partition_key
    with db(duckdb) as conn:
        ranks = store.album_rankings(conn, album)
        n_ok = len(store.album_photos(conn, album, only_ok=True))
    problems = []
    if sorted(ranks["rank"].tolist()) != list(range(1, len(ranks) + 1)):
        problems.append("ranks are not exactly 1..N")
    if len(ranks) != n_ok:
        problems.append(f"{len(ranks)} ranked but {n_ok} readable photos")
    fs = ranks["final_score"].astype(float)
    if not fs.map(math.isfinite).all() or ((fs < 0) | (fs > 1)).any():
        problems.append("final_score not finite in [0, 1]")
    csv_path = iqc.csv_path(album)
    if not csv_path.exists():
        problems.append(f"missing CSV {csv_path}")
    else:
        csv = pd.read_csv(csv_path)
        if csv["rank"].tolist() != list(range(1, len(csv) + 1)) or len(csv) != len(ranks):
            problems.append("CSV rows are not ranks 1..N in order")
    return dg.AssetCheckResult(passed=not problems, metadata={"n_ranked": len(ranks), "problems": "; ".join(problems)})


album_assets = [image_inventory, analyze_photos, clipdefs.aesthetic_scores, normalized_features,
                evaldefs.duplicate_groups, ranked_photos, evaldefs.evaluation_report]
album_checks = [unreadable_photos_have_reasons, every_photo_has_features, *clipdefs.clip_checks,
                scores_finite_in_unit_range, ranks_are_one_to_n, *evaldefs.evaluation_checks]

rank_album_job = dg.define_asset_job(
    "rank_album_job",
    selection=dg.AssetSelection.assets(*album_assets),
    description="Inventory, features, embeddings, scores, duplicate groups, ranked CSV and report for one album.",
)

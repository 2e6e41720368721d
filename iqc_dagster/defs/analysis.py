"""Stage 2, per album: ``analyze_photos`` decodes each photo once and feeds ``technical_features`` and
``clip_embeddings``; the checks of both.

The decoding, the features and CLIP run outside the DuckDB pool: each batch's rows go in with one
short write, and the file lock (waited for, bounded) keeps two processes' writes apart. So the analyses of
two albums launched together overlap (iqc_dagster_tests/test_defs_pools.py).
"""

import time

import dagster as dg
import numpy as np
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import analysis, dedup, names, store
from iqc_dagster.core import features as feat
from iqc_dagster.core.clip.embedding import ClipPass
from iqc_dagster.defs import keys
from iqc_dagster.defs.metadata import clip_status_metadata
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import ClipResource, IQCSettings, db


@dg.multi_asset(
    name="analyze_photos",
    specs=[
        dg.AssetSpec(
            keys.TECHNICAL_FEATURES, deps=[keys.IMAGE_INVENTORY], partitions_def=albums_partitions,
            group_name=keys.ALBUMS_GROUP,
            kinds={"python", "opencv", "duckdb"},
            description="Raw technical measurements (sharpness, exposure, contrast, faces) per photo, decoded "
                        "once and cached in DuckDB by content hash + feature version: only new or changed "
                        "photos are computed."),
        dg.AssetSpec(
            keys.CLIP_EMBEDDINGS, deps=[keys.IMAGE_INVENTORY], partitions_def=albums_partitions,
            group_name=keys.ALBUMS_GROUP, kinds={"pytorch", "duckdb"},
            description="CLIP image embeddings (L2-normalised FLOAT[]) per photo, cached in DuckDB by content "
                        "hash + model id and shared across runs and albums: only photos not yet embedded "
                        "with this model are computed. Prepared from the same decode as the technical "
                        "features. Skipped, saying why, when no CLIP model is available."),
    ],
    partitions_def=albums_partitions, can_subset=True,
    description="Decode each photo once and feed both technical_features and clip_embeddings.",
)
def analyze_photos(context: dg.AssetExecutionContext, iqc: IQCSettings, clip: ClipResource,
                   duckdb: DuckDBResource):
    album = context.partition_key
    folder = iqc.album_dir(album)
    selected = context.selected_asset_keys
    do_features = keys.TECHNICAL_FEATURES in selected
    do_clip = keys.CLIP_EMBEDDINGS in selected
    versions = analysis.feature_versions() if do_features else {}
    with db(duckdb) as conn:
        photos = store.album_photos(conn, album, only_ok=True)
        have = store.existing_features(conn, photos["content_hash"], versions) if do_features else set()
        have_hashes = (store.existing_hashes(conn, photos["content_hash"], dedup.PHASH_VERSION)
                       if do_features else set())
    paths_by_hash: dict[str, list[str]] = {}
    for p, h in zip(photos["path"], photos["content_hash"]):
        paths_by_hash.setdefault(h, []).append(p)
    cp = ClipPass(context.log, clip, list(paths_by_hash), lambda: db(duckdb)) if do_clip else None
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
        yield dg.MaterializeResult(asset_key=keys.TECHNICAL_FEATURES, metadata={
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
        summary = cp.summary(len(photos), failed_hashes)  # first: it may learn that the model failed to load
        yield dg.MaterializeResult(asset_key=keys.CLIP_EMBEDDINGS,
                                   metadata={**clip_status_metadata(cp.source), **summary})



@dg.asset_check(asset=keys.TECHNICAL_FEATURES, partitions_def=albums_partitions, blocking=True,
                description="Every readable photo in the inventory has every feature at its current version "
                            "and its perceptual hashes.")
def every_photo_has_features(context: dg.AssetCheckExecutionContext,
                             duckdb: DuckDBResource) -> dg.AssetCheckResult:
    album = context.op_execution_context.partition_key
    versions = analysis.feature_versions()
    with db(duckdb) as conn:
        photos = store.album_photos(conn, album, only_ok=True)
        have = store.existing_features(conn, photos["content_hash"], versions)
        hashed = store.existing_hashes(conn, photos["content_hash"], dedup.PHASH_VERSION)
    missing = [p for p, h in zip(photos["path"], photos["content_hash"])
               if h not in hashed or any((h, n) not in have for n in versions)]
    return dg.AssetCheckResult(passed=not missing, metadata={
        "n_ok_photos": len(photos), "n_missing": len(missing), "missing": ", ".join(missing[:20])})



@dg.asset_check(asset=keys.CLIP_EMBEDDINGS, partitions_def=albums_partitions,
                description="With a CLIP model available, every readable photo has an embedding of the "
                            "model's dimension; passes (saying so) when CLIP is skipped or off.")
def every_photo_has_clip_embedding(context: dg.AssetCheckExecutionContext, clip: ClipResource,
                                   duckdb: DuckDBResource) -> dg.AssetCheckResult:
    album = context.op_execution_context.partition_key
    source = clip.resolve()
    if not source.ready:
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={**clip_status_metadata(source), "checked": False})
    with db(duckdb) as conn:
        photos, matrix = store.album_embeddings(conn, album, source.model_id)
        model_row = store.clip_model(conn, source.model_id)
    missing = photos.loc[~photos["has_embedding"], "path"].tolist()
    problems = []
    if missing:
        problems.append(f"{len(missing)} photo(s) without an embedding: {', '.join(missing[:20])}")
    if len(matrix):
        dims = {matrix.shape[1]}
        if model_row and model_row["dim"] not in dims:
            problems.append(f"embedding dimension {sorted(dims)} != model dimension {model_row['dim']}")
        norms = np.linalg.norm(matrix, axis=1)
        if not np.allclose(norms, 1.0, atol=1e-3):
            problems.append("embeddings are not L2-normalised")
    return dg.AssetCheckResult(passed=not problems, severity=dg.AssetCheckSeverity.WARN, metadata={
        "model_id": source.model_id, "n_ok_photos": len(photos), "n_missing": len(missing),
        "problems": "; ".join(problems), "checked": True})


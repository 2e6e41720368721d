"""Stage 4: the ranking — ``duplicate_groups`` and ``ranked_photos`` per album, and the unpartitioned
``ranking_weights`` every ranking reads (``tuned_weights``, which feeds it, is in :mod:`.tuning`).

``ranking_weights`` stores the weight set it selects; ``ranked_photos`` ranks with exactly that set, so
the weights the UI shows are the ones in use. ``rank_album_job`` materializes it before each ranking.
"""

import math

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import brackets, dedup, fusion, inventory, names, ranking, raw, reasons, store, tuning
from iqc_dagster.defs import keys
from iqc_dagster.defs.metadata import md_table, table_metadata
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import ClipResource, IQCSettings, db

RANKS_CHECK = dg.AssetCheckSpec(
    "ranks_are_one_to_n", asset=keys.RANKED_PHOTOS, blocking=True,
    description="Ranks are exactly 1..N over the album's readable photos, scores in [0, 1], and the CSV "
                "holds the same N rows in rank order.")


@dg.asset(
    key=keys.DUPLICATE_GROUPS, partitions_def=albums_partitions, pool=keys.DUCKDB_POOL,
    group_name=keys.ALBUMS_GROUP, kinds={"python", "duckdb"}, deps=[keys.TECHNICAL_FEATURES, keys.CLIP_EMBEDDINGS],
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
        by_path = store.album_embedding_by_path(conn, album, source.model_id) if source.ready else {}
    if by_path:
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
        **table_metadata(rows),
        "n_photos": len(grouped),
        "n_groups": summary["n_groups"],  # groups of 2 or more photos
        "n_grouped_photos": summary["n_grouped_photos"],
        "n_unhashed": n_unhashed,
        "signals": emb_note,
        "thresholds": dg.MetadataValue.json(dedup.DEFAULT_THRESHOLDS.__dict__),
        "groups": md_table(multi[["group_id", "group_kind", "path"]], 40, empty="_no duplicates or bursts_"),
    })


@dg.asset(
    key=keys.RANKING_WEIGHTS, pool=keys.DUCKDB_POOL, group_name=keys.WEIGHTS_GROUP,
    kinds={"python", "duckdb"}, deps=[keys.TUNED_WEIGHTS],
    description="Fusion weights used by ranked_photos: the latest tuned_weights when their held-out "
                "agreement is not below the defaults', else the seed's defaults (aesthetic .35, "
                "sharpness .35, exposure .2, contrast .1, faces .05).",
)
def ranking_weights(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with db(duckdb) as conn:
        w = tuning.weights_for_ranking(conn)
        store.set_ranking_weights(conn, w.weights_id, w.source, w.values)
        latest = tuning.latest_row(conn)
    context.log.info(f"ranking weights ({w.source}): {w.values}")
    metadata = {"weights": dg.MetadataValue.json(w.values), "source": w.source, "weights_id": w.weights_id}
    if latest is not None:
        metadata["latest_tuning"] = dg.MetadataValue.json({
            "study": latest["study"], "weights_id": latest["weights_id"], "objective": latest["objective"],
            "heldout_default": latest["heldout_default"], "heldout_tuned": latest["heldout_tuned"],
            "used": w.source.startswith("tuned:")})
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=keys.RANKED_PHOTOS, partitions_def=albums_partitions, pool=keys.DUCKDB_POOL,
    group_name=keys.ALBUMS_GROUP, kinds={"python", "duckdb", "csv"}, check_specs=[RANKS_CHECK],
    deps=[keys.NORMALIZED_FEATURES, keys.AESTHETIC_SCORES, keys.DUPLICATE_GROUPS, keys.RANKING_WEIGHTS],
    description="The album ranked by final_score (weighted fusion of the scores), written to "
                "$IQC_OUTPUT_DIR/csvs/<album>.csv and to DuckDB, with the weights that produced it "
                "(those ranking_weights selected).",
)
def ranked_photos(context: dg.AssetExecutionContext, iqc: IQCSettings,
                  duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    folder = iqc.album_dir(album)
    with db(duckdb) as conn:
        chosen = store.ranking_weights(conn)
        scores = store.album_scores(conn, album)
        photos = store.album_photos(conn, album)
        aesthetic = store.aesthetic_status(conn, album) or {"status": "unknown", "message": ""}
        groups = store.album_groups(conn, album)
        hash_rows = store.album_hash_rows(conn, album, dedup.PHASH_VERSION)
    if chosen is None:
        raise dg.Failure(description="no ranking weights in this database yet: materialize ranking_weights "
                                     "first (rank_album_job, iqc rank and iqc run include it)")
    weights = fusion.Weights(values=chosen["values"], source=chosen["source"])
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
    skipped = photos[inventory.unreadable(photos)][["path", "reason"]].rename(columns={"path": "file"})
    skipped_path = ranking.write_csv_atomic(skipped, iqc.skipped_csv_path(album))
    db_rows = pd.DataFrame({
        "album": album, "path": ranked["file"], "content_hash": ranked.get("content_hash"),
        "rank": ranked["rank"], "final_score": ranked["final_score"], "weights_id": weights.weights_id,
        "ranked_at": store.now()}) if not ranked.empty else pd.DataFrame()
    with db(duckdb) as conn:
        store.replace_album_rows(conn, "rankings", album, db_rows)
    if markers:
        context.log.info(f"{album}: {len(markers)} blank or tiny frame(s) ranked last")
    context.log.info(f"{album}: ranked {len(ranked)} photos -> {csv_path}")
    top = ranked[["rank", "file", "final_score"]].head(5) if not ranked.empty else ranked
    return dg.MaterializeResult(metadata={
        **table_metadata(ranked),
        "csv": dg.MetadataValue.path(str(csv_path.resolve())),
        "skipped_csv": dg.MetadataValue.path(str(skipped_path.resolve())),
        "n_ranked": len(ranked),
        "n_skipped": len(skipped),
        "n_raw_skipped": sum(inventory.imaging.is_raw_name(str(f)) for f in skipped["file"]),
        "n_raw_jpeg_pairs": int((photos["status"] == raw.COMPANION_STATUS).sum()),
        "n_no_detail": len(markers),
        "top5": md_table(top, 5),
        "weights_id": weights.weights_id,
        "weights_source": weights.source,
        "effective_weights": dg.MetadataValue.json(result.effective_weights if result else {}),
        "notes": "; ".join(([aesthetic["message"]] if aesthetic["status"] in ("skipped", "off") else [])
                           + (result.notes if result else [])),
        "aesthetic_status": aesthetic["status"],
    }, check_results=[_ranks_check(ranked, int((photos["status"] == "ok").sum()), csv_path)])


def _ranks_check(ranked: pd.DataFrame, n_ok: int, csv_path) -> dg.AssetCheckResult:
    """The ranking just written: ranks 1..N over the readable photos, scores in [0, 1], and the CSV on
    disk (read back) holding the same N rows in rank order."""
    problems = []
    if sorted(ranked["rank"].tolist()) != list(range(1, len(ranked) + 1)):
        problems.append("ranks are not exactly 1..N")
    if len(ranked) != n_ok:
        problems.append(f"{len(ranked)} ranked but {n_ok} readable photos")
    fs = ranked["final_score"].astype(float)
    if not fs.map(math.isfinite).all() or ((fs < 0) | (fs > 1)).any():
        problems.append("final_score not finite in [0, 1]")
    if not csv_path.exists():
        problems.append(f"missing CSV {csv_path}")
    else:
        csv = pd.read_csv(csv_path)
        if csv["rank"].tolist() != list(range(1, len(csv) + 1)) or len(csv) != len(ranked):
            problems.append("CSV rows are not ranks 1..N in order")
    return dg.AssetCheckResult(check_name=RANKS_CHECK.name, passed=not problems,
                               metadata={"n_ranked": len(ranked), "problems": "; ".join(problems)})

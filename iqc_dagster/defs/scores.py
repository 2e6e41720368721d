"""Stage 3, per album: the scores — ``normalized_features`` (calibrated technical scores) and
``aesthetic_scores`` (CLIP's aesthetic probability) — each with its check declared on the asset.

When no CLIP model is available, or CLIP is turned off, nothing fails: ``aesthetic_scores`` materializes
with ``status`` = ``skipped`` (or ``off``) and a plain message saying how to provide a model, the album's
``aesthetic`` scores are removed, and ``ranked_photos`` redistributes the aesthetic weight and says so.
"""

import math

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import analysis, fusion, ranking, store
from iqc_dagster.core import clip as clipcore
from iqc_dagster.defs import keys
from iqc_dagster.defs.metadata import clip_status_metadata, md_table, table_metadata
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import ClipResource, db

AESTHETIC = fusion.AESTHETIC_COLUMN

SCORE_DEFINITION = (
    "aesthetic = softmax over CLIP's scaled logits [t*cos(img, positive), t*cos(img, negative)], taken "
    "for the positive side = sigmoid(t * (s_pos - s_neg)), t = exp(logit_scale); several prompts per side "
    "are ensembled (mean of normalised text embeddings). In [0, 1]; 0.5 = undecided."
)

SCORES_CHECK = dg.AssetCheckSpec(
    "scores_finite_in_unit_range", asset=keys.NORMALIZED_FEATURES, blocking=True,
    description="Every normalised score is finite and within [0, 1].")
AESTHETIC_CHECK = dg.AssetCheckSpec(
    "aesthetic_in_unit_range", asset=keys.AESTHETIC_SCORES, blocking=True,
    description="Aesthetic scores are finite, within [0, 1], and present for every embedded photo "
                "(none at all when aesthetic scoring was skipped).")


def _out_of_range(values) -> int:
    """How many of ``values`` are missing, not finite, or outside [0, 1]."""
    return sum(1 for v in values if v is None or not math.isfinite(v) or not 0.0 <= v <= 1.0)


@dg.asset(
    key=keys.NORMALIZED_FEATURES, partitions_def=albums_partitions, pool=keys.DUCKDB_POOL,
    group_name=keys.ALBUMS_GROUP, kinds={"python", "duckdb"}, deps=[keys.TECHNICAL_FEATURES],
    check_specs=[SCORES_CHECK],
    description="Calibrated [0, 1] scores per photo (higher is better). The mapping is absolute, not "
                "relative to the album, so adding a photo never reorders the others. (The 'aesthetic' "
                "score beside them is written by aesthetic_scores.)",
)
def normalized_features(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    with db(duckdb) as conn:
        long = store.album_features(conn, album, analysis.feature_versions())
        rows = ranking.normalized_rows(album, long)
        store.replace_album_scores(conn, album, rows, keep={AESTHETIC})
    summary = ranking.score_summary(rows)
    calibrated = rows[~rows["score"].astype(str).str.startswith("raw.")]
    bad = [f"{c}: {n}" for c, grp in calibrated.groupby("score", sort=True)
           if (n := _out_of_range(v for v in grp["value"].astype(float) if not math.isnan(v)))]
    return dg.MaterializeResult(metadata={
        **table_metadata(rows),
        "n_photos": int(rows["path"].nunique()) if not rows.empty else 0,
        "summary": md_table(summary, 50),
    }, check_results=[dg.AssetCheckResult(
        check_name=SCORES_CHECK.name, passed=not bad,
        metadata={"columns": ", ".join(sorted(set(calibrated["score"]))), "violations": "; ".join(bad)})])


@dg.asset(
    key=keys.AESTHETIC_SCORES, partitions_def=albums_partitions, group_name=keys.ALBUMS_GROUP,
    kinds={"pytorch", "duckdb"}, deps=[keys.CLIP_EMBEDDINGS], check_specs=[AESTHETIC_CHECK],
    description="CLIP aesthetic score per photo in [0, 1]: the probability CLIP gives the positive prompts "
                "over the negative ones (defaults: 'a professional photograph, sharp, vibrant, dramatic "
                "lighting' vs 'a blurry, poorly composed snapshot'). Stored as score 'aesthetic'. Skipped, "
                "with the reason in the metadata, when no CLIP model is available or CLIP is off.",
)
def aesthetic_scores(context: dg.AssetExecutionContext, clip: ClipResource,
                     duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    settings = clip.settings()
    prompts = {"positive": list(settings.positive_prompts), "negative": list(settings.negative_prompts)}
    source = clip.resolve()
    if source.ready:
        with db(duckdb) as conn:
            photos, matrix = store.album_embeddings(conn, album, source.model_id)
            texts = store.text_embeddings(conn, source.model_id, prompts["positive"] + prompts["negative"])
            model_row = store.clip_model(conn, source.model_id)
        missing_prompts = [p for p in prompts["positive"] + prompts["negative"] if p not in texts]
        n_text_encoded = 0
        # photos but no embedding at all: the model may have failed to load in analyze_photos; loading it
        # here turns that into the 'skipped' status with its reason instead of an empty 'computed'
        if (missing_prompts or model_row is None) and (len(matrix) or len(photos)):
            try:
                loaded = clip.load(source)
            except clipcore.ClipLoadError as exc:
                source = clipcore.load_failed(source, exc)
            else:
                vecs = loaded.embed_texts(missing_prompts) if missing_prompts else np.zeros((0, loaded.dim))
                n_text_encoded = len(missing_prompts)
                texts.update(zip(missing_prompts, vecs))
                model_row = {"logit_scale": loaded.logit_scale}
                with db(duckdb) as conn:
                    store.write_text_embeddings(conn, source.model_id, missing_prompts, vecs)
                    store.save_clip_model(conn, source.model_id, source.label or source.requested,
                                          loaded.dim, loaded.logit_scale)
    if not source.ready:
        msg = source.message()
        (context.log.info if source.status == "off" else context.log.warning)(msg)
        with db(duckdb) as conn:
            store.replace_album_scores(conn, album, pd.DataFrame(), only={AESTHETIC})
            store.save_aesthetic_status(conn, album, "off" if source.status == "off" else "skipped",
                                        prompts=prompts, message=msg)
        return dg.MaterializeResult(metadata={**clip_status_metadata(source), "n_scored": 0,
                                              "prompts": dg.MetadataValue.json(prompts)},
                                    check_results=[_aesthetic_check(source.status, [])])

    with_emb = photos[photos["has_embedding"]].reset_index(drop=True)
    missing = photos[~photos["has_embedding"]]
    if len(with_emb):
        pos = np.stack([texts[p] for p in prompts["positive"]])
        neg = np.stack([texts[p] for p in prompts["negative"]])
        values = clipcore.aesthetic_probability(matrix, pos, neg, model_row["logit_scale"])
    else:
        values = np.zeros(0)
    rows = pd.DataFrame({"album": album, "path": with_emb["path"], "content_hash": with_emb["content_hash"],
                         "score": AESTHETIC, "value": values.astype(float)})
    for p in missing["path"]:
        context.log.warning(f"no CLIP embedding for {p}: it gets no aesthetic score (weight redistributed)")
    msg = (f"aesthetic scores for {len(rows)} photo(s) from CLIP {source.model_id}"
           + (f"; {len(missing)} photo(s) without an embedding" if len(missing) else ""))
    with db(duckdb) as conn:
        store.replace_album_scores(conn, album, rows, only={AESTHETIC})
        store.save_aesthetic_status(conn, album, "computed", model_id=source.model_id, prompts=prompts,
                                    message=msg, n_scored=len(rows), n_missing=len(missing))
    context.log.info(msg)
    top = rows.sort_values("value", ascending=False)[["path", "value"]].head(5).round(3)
    return dg.MaterializeResult(metadata={
        **clip_status_metadata(source),
        **table_metadata(rows),
        "message": msg,
        "n_scored": len(rows),
        "n_missing": len(missing),
        "prompts": dg.MetadataValue.json(prompts),
        "prompt_set_id": clipcore.prompt_set_id(prompts["positive"], prompts["negative"]),
        "n_text_encoded": n_text_encoded,  # prompts not yet stored for this model (then encoded and stored)
        "logit_scale": round(float(model_row["logit_scale"]), 4) if model_row else None,
        "mean": round(float(values.mean()), 4) if len(values) else None,
        "min": round(float(values.min()), 4) if len(values) else None,
        "max": round(float(values.max()), 4) if len(values) else None,
        "top5": md_table(top, 5),
        "definition": SCORE_DEFINITION,
    }, check_results=[_aesthetic_check("computed", rows["value"].tolist())])


def _aesthetic_check(status: str, values: list) -> dg.AssetCheckResult:
    problems = []
    if n_bad := _out_of_range(values):
        problems.append(f"{n_bad} value(s) not finite in [0, 1]")
    return dg.AssetCheckResult(check_name=AESTHETIC_CHECK.name, passed=not problems, metadata={
        "status": "computed" if status == "computed" else ("off" if status == "off" else "skipped"),
        "n_values": len(values), "problems": "; ".join(problems)})

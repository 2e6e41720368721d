"""CLIP in the album graph: embedding batches for ``analyze_photos``, the ``aesthetic_scores`` asset, checks.

The ``clip_embeddings`` asset itself is the second output of the ``analyze_photos`` multi-asset in
:mod:`iqc_dagster.defs.analysis`, so each photo is decoded once for the technical features and for CLIP;
this module holds the CLIP half of that work (:class:`ClipPass`) and everything downstream of it.

When no model is available, or CLIP is turned off, nothing fails: ``clip_embeddings`` and
``aesthetic_scores`` materialize with ``status`` = ``skipped`` (or ``off``) and a plain message saying how
to provide a model, the album's ``aesthetic`` scores are removed, and ``ranked_photos`` redistributes
the aesthetic weight and says so.
"""


import functools
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import clip as clipcore
from iqc_dagster.core import fusion, store
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import DUCKDB_POOL, ClipResource, db

GROUP = "albums"
CLIP_EMBEDDINGS = dg.AssetKey("clip_embeddings")
AESTHETIC = fusion.AESTHETIC_COLUMN

SCORE_DEFINITION = (
    "aesthetic = softmax over CLIP's scaled logits [t*cos(img, positive), t*cos(img, negative)], taken "
    "for the positive side = sigmoid(t * (s_pos - s_neg)), t = exp(logit_scale); several prompts per side "
    "are ensembled (mean of normalised text embeddings). In [0, 1]; 0.5 = undecided."
)


#: One background thread loads CLIP models (see ClipPass); loads of the same model are cached in the process.
_LOADER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iqc-clip-load")


def _status_metadata(source: clipcore.ModelSource) -> dict:
    status = {"ready": "computed", "off": "off"}.get(source.status, "skipped")
    md = {"status": status, "message": source.message(), "model_requested": source.requested,
          "resolve_ms": round(source.seconds * 1000, 1)}
    if source.ready:
        md.update(model_id=source.model_id, model_path=dg.MetadataValue.path(str(source.path)),
                  preprocessing=source.preprocess.describe())
    else:
        md.update(reason=source.reason)
        if source.fix:
            md["how_to_enable"] = source.fix
    return md


class ClipPass:
    """The CLIP half of one ``analyze_photos`` run: which photos need an embedding, and writing them.

    ``prepare`` is handed to :func:`iqc_dagster.core.analysis.analyze` and runs in its workers on the
    shared decode; :meth:`embed` turns a batch's prepared arrays into rows of ``clip_embeddings``.
    """

    def __init__(self, context, clip: ClipResource, hashes: list[str], conn_factory):
        self.context = context
        self.clip = clip
        self.source = clip.resolve()
        self.loaded: clipcore.LoadedClip | None = None
        self.todo: set[str] = set()
        self.n_cached = 0
        self.n_embedded = 0
        self.failed: dict[str, str] = {}  # content_hash -> reason
        self.embed_seconds = 0.0
        self.error: str | None = None
        self._loading: Future | None = None
        log = context.log
        if not self.source.ready:
            (log.info if self.source.status == "off" else log.warning)(self.source.message())
            return
        with conn_factory() as conn:
            have = store.existing_embeddings(conn, hashes, self.source.model_id)
        self.n_cached = len(set(hashes) & have)
        self.todo = set(hashes) - have
        log.info(f"CLIP {self.source.model_id}: {len(self.todo)} photo(s) to embed, {self.n_cached} cached "
                 f"(resolved in {self.source.seconds * 1000:.0f} ms)")
        if not self.todo:
            return
        # Load the model in the background: importing torch and transformers and reading the weights
        # takes seconds (about 7 s for ViT-B/32 on 2 cores), which the first batches' decoding overlaps.
        # Preprocessing needs only the model's preprocessing spec, known already.
        self._conn_factory = conn_factory
        self._load_started = time.monotonic()
        self._loading = _LOADER.submit(clip.load, self.source)

    @property
    def prepare(self):
        """The preprocessing to run in the decode workers, or None when nothing is to be embedded."""
        if not self.todo:
            return None
        return functools.partial(clipcore.prepare, spec=self.source.preprocess)

    @property
    def on_accelerator(self) -> bool:
        return bool(self.todo) and self.clip.device.strip().lower() != "cpu"

    def _wait_loaded(self) -> bool:
        """Wait for the background load; on failure say why once and embed nothing more."""
        if self._loading is not None:
            fut, self._loading = self._loading, None
            try:
                self.loaded = fut.result()
            except clipcore.ClipLoadError as exc:
                self.source = clipcore.load_failed(self.source, exc)
                self.context.log.warning(self.source.message())
                self.todo = set()
                return False
            how = (f"in {self.loaded.load_seconds:.1f}s" if self.loaded.loaded_at >= self._load_started
                   else "(already loaded in this process)")
            self.context.log.info(
                f"loaded CLIP {self.source.model_id} on {self.loaded.device} ({self.loaded.precision}) {how}; "
                f"preprocessing: {self.source.preprocess.describe()}")
            with self._conn_factory() as conn:
                store.save_clip_model(conn, self.source.model_id, self.source.label or self.source.requested,
                                      self.loaded.dim, self.loaded.logit_scale)
        return self.loaded is not None

    def embed(self, batch) -> tuple[list[str], np.ndarray | None]:
        """Embed a batch's prepared arrays (outside any DB connection); returns (hashes, N x D) to write."""
        for h, reason in batch.clip_errors.items():
            self.failed[h] = reason
            self.context.log.warning(f"no CLIP embedding for photo {h}: {reason}")
        if not batch.clip_inputs or self.error or not self._wait_loaded():
            return [], None
        hashes = [h for h, _ in batch.clip_inputs]
        t0 = time.perf_counter()
        try:
            emb = self.loaded.embed_images([a for _, a in batch.clip_inputs], self.clip.batch_size)
        except Exception as exc:  # e.g. out of memory on the device: keep the features, report it
            self.error = f"CLIP embedding failed: {type(exc).__name__}: {exc}"
            self.context.log.error(self.error)
            for h in hashes:
                self.failed[h] = self.error
            return [], None
        self.embed_seconds += time.perf_counter() - t0
        self.n_embedded += len(hashes)
        return hashes, emb

    def write(self, conn, hashes: list[str], emb: np.ndarray | None) -> None:
        if hashes and emb is not None:
            store.write_embeddings(conn, self.source.model_id, hashes, emb)

    def metadata(self, n_photos: int, unreadable_hashes: set[str]) -> dict:
        self._wait_loaded()  # no batch may have needed the model (every photo unreadable): still report a bad one
        md = _status_metadata(self.source)
        failed = {h: r for h, r in self.failed.items()} | {h: "unreadable" for h in unreadable_hashes & self.todo}
        md.update(n_photos=n_photos, n_embedded=self.n_embedded, n_cached=self.n_cached, n_failed=len(failed))
        if self.loaded is not None:
            md.update(device=self.loaded.device, precision=self.loaded.precision,
                      batch_size=self.clip.batch_size, dim=self.loaded.dim,
                      load_seconds=round(self.loaded.load_seconds, 2),
                      embed_seconds=round(self.embed_seconds, 2),
                      images_per_second=round(self.n_embedded / self.embed_seconds, 1)
                      if self.embed_seconds > 0 else 0.0)
        if self.error:
            md["error"] = self.error
        return md


@dg.asset(
    partitions_def=albums_partitions, pool=DUCKDB_POOL, group_name=GROUP, kinds={"pytorch", "duckdb"},
    deps=[CLIP_EMBEDDINGS],
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
        return dg.MaterializeResult(metadata={**_status_metadata(source), "n_scored": 0,
                                              "prompts": dg.MetadataValue.json(prompts)})

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
        **_status_metadata(source),
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
        "top5": dg.MetadataValue.md(top.to_markdown(index=False) if not top.empty else "_none_"),
        "definition": SCORE_DEFINITION,
    })


@dg.asset_check(asset=CLIP_EMBEDDINGS, partitions_def=albums_partitions,
                description="With a CLIP model available, every readable photo has an embedding of the "
                            "model's dimension; passes (saying so) when CLIP is skipped or off.")
def every_photo_has_clip_embedding(context: dg.AssetCheckExecutionContext, clip: ClipResource,
                                   duckdb: DuckDBResource) -> dg.AssetCheckResult:
    album = context.op_execution_context.partition_key
    source = clip.resolve()
    if not source.ready:
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={**_status_metadata(source), "checked": False})
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


@dg.asset_check(asset=aesthetic_scores, partitions_def=albums_partitions, blocking=True,
                description="Aesthetic scores are finite, within [0, 1], and present for every embedded photo "
                            "(none at all when aesthetic scoring was skipped).")
def aesthetic_in_unit_range(context: dg.AssetCheckExecutionContext,
                            duckdb: DuckDBResource) -> dg.AssetCheckResult:
    album = context.op_execution_context.partition_key
    with db(duckdb) as conn:
        status = store.aesthetic_status(conn, album) or {"status": "missing", "n_scored": 0, "message": ""}
        values = [r[0] for r in conn.execute(
            "SELECT value FROM normalized_scores WHERE album = ? AND score = ?", [album, AESTHETIC]).fetchall()]
    problems = []
    bad = [v for v in values if v is None or not math.isfinite(v) or not 0.0 <= v <= 1.0]
    if bad:
        problems.append(f"{len(bad)} value(s) not finite in [0, 1]")
    if status["status"] == "computed" and len(values) != status["n_scored"]:
        problems.append(f"{len(values)} stored but {status['n_scored']} scored")
    if status["status"] != "computed" and values:
        problems.append(f"{len(values)} aesthetic value(s) left although scoring was {status['status']}")
    return dg.AssetCheckResult(passed=not problems, metadata={
        "status": status["status"], "n_values": len(values), "message": status["message"],
        "problems": "; ".join(problems)})


clip_checks = [every_photo_has_clip_embedding, aesthetic_in_unit_range]

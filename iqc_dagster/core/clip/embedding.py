"""The CLIP half of the analysis pass: which photos need an embedding, loading the model in the
background while the first photos decode, embedding each batch's prepared arrays, and writing them.

Owned by the ``analyze_photos`` step (:mod:`iqc_dagster.defs.analysis`); no Dagster import. ``clip`` is
the step's CLIP resource: ``resolve()``, ``load(source)``, ``device`` and ``batch_size``.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from iqc_dagster.core import store
from iqc_dagster.core.clip import ClipLoadError, LoadedClip, load_failed, prepare


class ClipPass:
    """The CLIP half of one ``analyze_photos`` run: which photos need an embedding, and writing them.

    ``prepare`` is handed to :func:`iqc_dagster.core.analysis.analyze` and runs in its workers on the
    shared decode; :meth:`embed` turns a batch's prepared arrays into rows of ``clip_embeddings``.
    """

    def __init__(self, log, clip, hashes: list[str], conn_factory):
        self.log = log
        self.clip = clip
        self.source = clip.resolve()
        self.loaded: LoadedClip | None = None
        self.todo: set[str] = set()
        self.n_cached = 0
        self.n_embedded = 0
        self.failed: dict[str, str] = {}  # content_hash -> reason
        self.embed_seconds = 0.0
        self.error: str | None = None
        self._loading: Future | None = None
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
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iqc-clip-load")
        self._loading = self._loader.submit(clip.load, self.source)

    @property
    def prepare(self):
        """The preprocessing to run in the decode workers, or None when nothing is to be embedded."""
        if not self.todo:
            return None
        return functools.partial(prepare, spec=self.source.preprocess)

    @property
    def on_accelerator(self) -> bool:
        return bool(self.todo) and self.clip.device.strip().lower() != "cpu"

    def _wait_loaded(self) -> bool:
        """Wait for the background load; on failure say why once and embed nothing more."""
        if self._loading is not None:
            fut, self._loading = self._loading, None
            self._loader.shutdown(wait=False)
            try:
                self.loaded = fut.result()
            except ClipLoadError as exc:
                self.source = load_failed(self.source, exc)
                self.log.warning(self.source.message())
                self.todo = set()
                return False
            how = (f"in {self.loaded.load_seconds:.1f}s" if self.loaded.loaded_at >= self._load_started
                   else "(already loaded in this process)")
            self.log.info(
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
            self.log.warning(f"no CLIP embedding for photo {h}: {reason}")
        if not batch.clip_inputs or self.error or not self._wait_loaded():
            return [], None
        hashes = [h for h, _ in batch.clip_inputs]
        t0 = time.perf_counter()
        try:
            emb = self.loaded.embed_images([a for _, a in batch.clip_inputs], self.clip.batch_size)
        except Exception as exc:  # e.g. out of memory on the device: keep the features, report it
            self.error = f"CLIP embedding failed: {type(exc).__name__}: {exc}"
            self.log.error(self.error)
            for h in hashes:
                self.failed[h] = self.error
            return [], None
        self.embed_seconds += time.perf_counter() - t0
        self.n_embedded += len(hashes)
        return hashes, emb

    def write(self, conn, hashes: list[str], emb: np.ndarray | None) -> None:
        if hashes and emb is not None:
            store.write_embeddings(conn, self.source.model_id, hashes, emb)

    def summary(self, n_photos: int, unreadable_hashes: set[str]) -> dict:
        """Counts and timings of the pass (the ``clip_embeddings`` metadata beside the model's status)."""
        self._wait_loaded()  # no batch may have needed the model (every photo unreadable): still report a bad one
        md = {}
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


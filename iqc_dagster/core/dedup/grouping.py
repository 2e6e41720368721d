"""Which photos look like the same shot: near-duplicate and burst pairs in bounded-memory blocks, and
the connected components of that graph (:func:`similar_pairs`, :func:`components`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from iqc_dagster.core.files import cpu_workers


@dataclass(frozen=True)
class Thresholds:
    """When two photos are joined. Defaults measured in docs/evaluation.md ("Grouping")."""

    phash_near: int = 10  # pHash Hamming distance <= this: near-duplicate
    cosine_near: float = 0.95  # CLIP cosine >= this: near-duplicate
    burst_seconds: float = 10.0  # capture times at most this far apart ...
    burst_neighbours: int = 8  # ... and at most this many photos apart in capture order ...
    phash_burst: int = 16  # ... and pHash distance <= this, or
    cosine_burst: float = 0.90  # ... CLIP cosine >= this: burst

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_THRESHOLDS = Thresholds()




def _seconds(values, n: int) -> np.ndarray:
    """Capture times → float seconds (NaN where missing or unparsable)."""
    if values is None:
        return np.full(n, np.nan)
    raw = pd.Series(list(values), dtype=object)
    try:
        ts = pd.to_datetime(raw, errors="coerce", format="mixed")
    except (ValueError, TypeError):  # naive and time-zone-aware values mixed
        ts = pd.to_datetime(raw, errors="coerce", format="mixed", utc=True)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    out = np.full(n, np.nan)
    ok = ts.notna().to_numpy()
    if ok.any():
        base = ts[ok].min()
        out[ok] = (ts[ok] - base).dt.total_seconds().to_numpy(dtype=float)
    return out


def _embedding_matrix(values, n: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Embeddings (arrays or None) → (n x D float32, L2-normalised, zeros where missing; valid mask)."""
    if values is None:
        return None, np.zeros(n, dtype=bool)
    vecs = []
    dim = None
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            vecs.append(None)
            continue
        a = np.asarray(v, dtype=np.float32).ravel()
        if a.size == 0 or not np.all(np.isfinite(a)):
            vecs.append(None)
            continue
        if dim is None:
            dim = a.size
        elif a.size != dim:
            raise ValueError(f"embeddings of different sizes ({dim} and {a.size}) cannot be compared")
        vecs.append(a)
    valid = np.array([v is not None for v in vecs], dtype=bool)
    if dim is None:
        return None, valid
    m = np.zeros((n, dim), dtype=np.float32)
    for i, v in enumerate(vecs):
        if v is not None:
            norm = float(np.linalg.norm(v))
            if norm > 0:
                m[i] = v / norm
            else:
                valid[i] = False
    return m, valid


def _ladder_distance(ha: np.ndarray, hb_t: np.ndarray) -> np.ndarray:
    """Grouping distance between hash rows ``ha`` (a x K) and the *transposed* hashes ``hb_t``
    (K x b, each row contiguous: about twice as fast as strided columns) → a x b uint8."""
    dist = np.bitwise_count(ha[:, 0, None] ^ hb_t[0][None, :])
    for k in range(1, ha.shape[1]):  # a centre crop of one vs the whole frame of the other
        np.minimum(dist, np.bitwise_count(ha[:, k, None] ^ hb_t[0][None, :]), out=dist)
        np.minimum(dist, np.bitwise_count(ha[:, 0, None] ^ hb_t[k][None, :]), out=dist)
    return dist


def _pair_distance(ha: np.ndarray, hb: np.ndarray) -> np.ndarray:
    """Grouping distance of row i of ``ha`` with row i of ``hb`` (both P x K) → P uint8."""
    dist = np.bitwise_count(ha[:, 0] ^ hb[:, 0])
    for k in range(1, ha.shape[1]):
        np.minimum(dist, np.bitwise_count(ha[:, k] ^ hb[:, 0]), out=dist)
        np.minimum(dist, np.bitwise_count(ha[:, 0] ^ hb[:, k]), out=dist)
    return dist


def _dense_pairs(n: int, block_elems: int, test, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of 0..n-1 for which ``test(s, e)`` (a (e-s) x (n-s) bool block: rows s..e-1
    against columns s..n-1) is True, computed block by block (numpy releases the GIL, so ``workers``
    threads run blocks side by side)."""
    step = max(1, block_elems // max(1, n))

    def one(s: int):
        e = min(n, s + step)
        mask = test(s, e)
        mask[:, :e - s] &= np.triu(np.ones((e - s, e - s), dtype=bool), k=1)  # j > i only
        r, c = np.nonzero(mask)
        return r + s, c + s

    starts = range(0, n, step)
    if workers > 1 and len(starts) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(one, starts))
    else:
        parts = [one(s) for s in starts]
    parts = [p for p in parts if p[0].size]
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return (np.concatenate([p[0] for p in parts]).astype(np.int64),
            np.concatenate([p[1] for p in parts]).astype(np.int64))


def _window_pairs(ts: np.ndarray, window: float, neighbours: int, chunk: int = 1 << 21):
    """Yield (a, b) position arrays (a < b) of the *sorted* times ``ts``: each photo with each of the
    next ``neighbours`` photos that are at most ``window`` later; in chunks of about ``chunk`` pairs."""
    pos = np.arange(ts.size)
    counts = np.searchsorted(ts, ts + window, side="right") - pos - 1  # later photos within the window
    counts = np.minimum(counts, neighbours)
    for start in range(0, ts.size, max(1, chunk // max(1, neighbours))):
        stop = min(ts.size, start + max(1, chunk // max(1, neighbours)))
        c = counts[start:stop]
        m = int(c.sum())
        if m:
            a = np.repeat(pos[start:stop], c)
            first = np.repeat(np.cumsum(c) - c, c)
            yield a, a + 1 + (np.arange(m) - first)


def _burst_pairs(hashes, hash_ok, seconds, names, emb, emb_ok, t: Thresholds):
    """Pairs that are neighbours in capture order (at most ``burst_neighbours`` apart, within
    ``burst_seconds``), alike under the loose thresholds, and not near-duplicates."""
    idx = np.flatnonzero(np.isfinite(seconds))
    if idx.size < 2 or t.burst_neighbours < 1:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    # capture order; equal times (1 s EXIF resolution) in file-name order, as cameras number frames
    order = idx[np.lexsort((names[idx], seconds[idx]))]
    has_emb = emb is not None and bool(emb_ok.any())
    out_i, out_j = [], []
    for pa, pb in _window_pairs(seconds[order], t.burst_seconds, t.burst_neighbours):
        a, b = order[pa], order[pb]
        hok = hash_ok[a] & hash_ok[b]
        near = np.zeros(a.size, dtype=bool)
        loose = np.zeros(a.size, dtype=bool)
        if hok.any():
            d = _pair_distance(hashes[a], hashes[b])
            near |= hok & (d <= t.phash_near)
            loose |= hok & (d <= t.phash_burst)
        if has_emb:
            eok = emb_ok[a] & emb_ok[b]
            if eok.any():
                cos = np.einsum("ij,ij->i", emb[a], emb[b])
                near |= eok & (cos >= t.cosine_near)
                loose |= eok & (cos >= t.cosine_burst)
        keep = loose & ~near
        out_i.append(np.minimum(a[keep], b[keep]))
        out_j.append(np.maximum(a[keep], b[keep]))
    if not out_i:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64)


def similar_pairs(hashes: np.ndarray, hash_ok: np.ndarray, seconds: np.ndarray | None = None,
                  embeddings: np.ndarray | None = None, emb_ok: np.ndarray | None = None,
                  thresholds: Thresholds = DEFAULT_THRESHOLDS, names: np.ndarray | None = None,
                  block_elems: int = 1 << 22, hash_block_elems: int = 1 << 18) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i < j) joined by an edge: ``(i, j, is_burst)`` as int64, int64, bool arrays.

    ``hashes`` uint64 n x len(CROP_LADDER) (:func:`hash_matrix`) with ``hash_ok`` mask; ``seconds``
    float (n,) capture times (NaN: unknown); ``embeddings`` n x D L2-normalised with ``emb_ok``.

    ``names`` (n,) orders photos taken in the same second (default: row order).

    Near-duplicates: every pair is compared, in row blocks of about ``hash_block_elems`` (hashes) or
    ``block_elems`` (embeddings) pairs: bounded memory. Bursts: photos sorted by capture time, each compared with its next ``burst_neighbours``
    photos within ``burst_seconds`` (O(n) pairs, even if a whole album shares one timestamp). A pair
    that is a near-duplicate is never also reported as a burst.
    """
    t = thresholds
    hashes = np.asarray(hashes, dtype=np.uint64)
    if hashes.ndim == 1:
        hashes = hashes[:, None]
    n = len(hashes)
    hash_ok = np.asarray(hash_ok, dtype=bool)
    if emb_ok is None or embeddings is None:
        embeddings, emb_ok = None, np.zeros(n, dtype=bool)
    else:
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    emb_ok = np.asarray(emb_ok, dtype=bool)
    workers = cpu_workers()

    edges_i, edges_j = [], []
    hidx = np.flatnonzero(hash_ok)
    if hidx.size > 1:
        h = np.ascontiguousarray(hashes[hidx])
        h_t = np.ascontiguousarray(h.T)
        # small blocks: the XOR/popcount temporaries stay in cache
        i, j = _dense_pairs(hidx.size, hash_block_elems,
                            lambda s, e: _ladder_distance(h[s:e], h_t[:, s:]) <= t.phash_near, workers=workers)
        edges_i.append(hidx[i])
        edges_j.append(hidx[j])
    eidx = np.flatnonzero(emb_ok)
    if eidx.size > 1:
        emb = embeddings[eidx]
        i, j = _dense_pairs(eidx.size, block_elems, lambda s, e: emb[s:e] @ emb[s:].T >= t.cosine_near)
        edges_i.append(eidx[i])
        edges_j.append(eidx[j])
    near_i = np.concatenate(edges_i) if edges_i else np.empty(0, np.int64)
    near_j = np.concatenate(edges_j) if edges_j else np.empty(0, np.int64)
    if near_i.size:
        key = np.unique(near_i * n + near_j)
        near_i, near_j = key // n, key % n

    bi = bj = np.empty(0, np.int64)
    if seconds is not None and t.burst_seconds >= 0:
        if names is None:
            names = np.arange(n)
        bi, bj = _burst_pairs(hashes, hash_ok, np.asarray(seconds, dtype=float), np.asarray(names),
                              embeddings, emb_ok, t)
    return (np.concatenate([near_i, bi]), np.concatenate([near_j, bj]),
            np.concatenate([np.zeros(near_i.size, bool), np.ones(bi.size, bool)]))


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of an undirected graph on 0..n-1: a root label per node (union-find).

    ``scipy.sparse.csgraph.connected_components`` does the same, but scipy is only a dev dependency
    (of scikit-image / scikit-learn, for the benchmark): these few lines spare the product a dependency,
    and keep the labels (stored as group keys) exactly as they were."""
    parent = np.arange(n)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in zip(i.tolist(), j.tolist()):
        ra, rb = find(a), find(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    return np.array([find(x) for x in range(n)], dtype=np.int64)



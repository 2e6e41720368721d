"""Near-duplicate and burst groups: perceptual hashes per photo, and connected components of the
"looks like the same shot" graph.

**Perceptual hash** (:func:`phash`): the DCT hash of Zauner, "Implementation and Benchmarking of
Perceptual Image Hash Functions" (2010), as in libpHash: luminance squashed to 32 x 32 (area
averaging, which is the low-pass filter), 2-D DCT, the 8 x 8 lowest frequencies without the DC row and
column, one bit per coefficient: above the median of the 64. A 64-bit Python ``int``, compared by
Hamming distance (0..64). Resizes, JPEG re-encodes, blur and noise move a few bits; a different photo
differs in about half of them.

A whole-frame pHash is not crop-tolerant (a 10% centre crop moves 15 bits on average, up to 30), so
:func:`photo_hashes` also hashes centre crops of 95, 90, 85 and 80% of each side (:data:`CROP_LADDER`),
and the *grouping distance* of two photos (:func:`photo_distance`) is the smallest of: whole frame vs
whole frame, and any centre crop of one vs the whole frame of the other. A centre crop of up to 20% a
side then lands within 6 bits of its original, while different photos stay 16+ bits apart (measured
in ``docs/evaluation.md``; ``data/measure_dedup.py`` reproduces it).

**Edges** between two photos (thresholds in :class:`Thresholds`):

* *near-duplicate*: grouping distance ``<= phash_near`` (10), or CLIP cosine ``>= cosine_near``
  (0.95) when both photos have an embedding;
* *burst*: capture times (EXIF) within ``burst_seconds`` (10 s) of each other and at most
  ``burst_neighbours`` (8) photos apart in capture order, and the photos look alike under looser
  thresholds: grouping distance ``<= phash_burst`` (16) or cosine ``>= cosine_burst`` (0.90). The
  neighbour limit keeps the number of burst comparisons linear, so an album whose photos all carry
  one timestamp (a camera clock never set) cannot chain into one giant group by chance.

**No detail**: a frame that is flat (its luminance, at the hash's 32 x 32, varies by less than
:data:`FLAT_STD` grey levels: a black frame, a lens-cap shot, a blank scan) or tiny (shorter side below
:data:`TINY_SIDE` pixels: a 1-pixel image, a noise strip) has no perceptual hash worth comparing: the
bits of flat frames are rounding noise, so all of them would look alike. Such a photo gets the marker
``"blank"`` or ``"tiny"`` instead of hashes (:func:`photo_signature`) and joins no near-duplicate or
burst edge, by hash or by CLIP (whose embeddings of blank frames are alike too). Byte-identical files
(same ``content_hash``) are always near-duplicates, whatever their pixels.

**Groups** are the connected components of that graph (single linkage: A~B and B~C put A, B and C in
one group even if A and C are not alike). Every photo is in exactly one group; a photo with no edge is
a group of one. The best pick of a group is its highest ``final_score`` (ties: the lower ``rank``, then
the path). Nothing is removed or hidden: :func:`group_photos` only adds columns.

Pairs are compared in row blocks with vectorised numpy (XOR + popcount, a matrix product for cosines),
with bounded memory and no Python loop over pairs: 20k photos (200 M pairs) take a few seconds.

No Dagster import here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

#: Bump when :func:`phash` changes: hashes of different versions must not be compared.
PHASH_VERSION = "phash2-dct32x8-ladder5-detail"
#: Centre crops (fraction of each side) hashed besides the whole frame (1.0 first).
CROP_LADDER = (1.0, 0.95, 0.90, 0.85, 0.80)
_MASK64 = (1 << 64) - 1
_HASH_SIDE = 32
#: The hash is computed from the luminance reduced (area averaging) to this long side: cheap, and
#: the same for a Decoded and for a plain array.
HASH_INPUT_SIDE = 256
_LOW = 8

#: Below this standard deviation (grey levels, of the 32 x 32 luminance the hash sees) a frame is blank.
FLAT_STD = 1.0
#: Below this shorter side (pixels) an image is too small to compare.
TINY_SIDE = 32
#: The markers :func:`photo_signature` stores instead of hashes, and what they mean in reasons.
NO_DETAIL = {"blank": "blank frame (no detail)", "tiny": "tiny image, too small to judge"}

#: Columns :func:`group_photos` adds.
GROUP_COLUMNS = ["group_id", "group_size", "is_best_in_group", "group_kind", "duplicate_of"]


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


# --- the hash -------------------------------------------------------------------------------------


def _gray_of(image) -> np.ndarray:
    """Luminance (uint8 or float, 2-D) at a long side of at most :data:`HASH_INPUT_SIDE`, from a
    Decoded, an H x W grey array or an H x W x 3 RGB array."""
    import cv2

    if hasattr(image, "gray") and hasattr(image, "gray_at"):  # imaging.Decoded, without importing it
        g = image.gray
        return image.gray_at(HASH_INPUT_SIDE) if max(g.shape) > HASH_INPUT_SIDE else g
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 3:
        a = cv2.cvtColor(np.ascontiguousarray(a, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"phash needs a grey or RGB image, got an array of shape {a.shape}")
    h, w = a.shape
    if max(h, w) > HASH_INPUT_SIDE:  # same as Decoded.gray_at
        scale = HASH_INPUT_SIDE / max(h, w)
        a = cv2.resize(a, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return a


def _dct_hash(g: np.ndarray) -> int:
    import cv2

    small = cv2.resize(g, (_HASH_SIDE, _HASH_SIDE), interpolation=cv2.INTER_AREA)
    coeffs = cv2.dct(small)[1:_LOW + 1, 1:_LOW + 1].ravel()
    bits = coeffs > np.median(coeffs)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def photo_hashes(image) -> tuple[int, ...]:
    """pHash of the whole frame and of its centre crops (:data:`CROP_LADDER`), as Python ints.

    ``image``: an :class:`~iqc_dagster.core.imaging.Decoded`, an H x W grey or H x W x 3 RGB array.
    Bit 63 of each hash is the (1, 1) DCT coefficient, then row by row to (8, 8) in bit 0.
    """
    g = _gray_of(image).astype(np.float32)
    h, w = g.shape
    out = []
    for s in CROP_LADDER:
        ch, cw = max(1, round(h * s)), max(1, round(w * s))
        y, x = (h - ch) // 2, (w - cw) // 2
        out.append(_dct_hash(g[y:y + ch, x:x + cw]))
    return tuple(out)


def no_detail(image) -> str | None:
    """``"blank"`` or ``"tiny"`` (:data:`NO_DETAIL`) when ``image`` carries no perceptual-hash
    information, else None. ``image`` as for :func:`photo_hashes`."""
    import cv2

    g = _gray_of(image)
    if min(g.shape) < TINY_SIDE:
        return "tiny"
    small = cv2.resize(g.astype(np.float32), (_HASH_SIDE, _HASH_SIDE), interpolation=cv2.INTER_AREA)
    if float(small.std()) < FLAT_STD:
        return "blank"
    return None


def photo_signature(image) -> str:
    """What the database stores per photo: the hex of :func:`photo_hashes`, or a :data:`NO_DETAIL`
    marker for a blank or tiny frame."""
    marker = no_detail(image)
    return marker if marker is not None else hashes_hex(photo_hashes(image))


def no_detail_marker(v) -> str | None:
    """The :data:`NO_DETAIL` marker in one cell of a ``phash`` column, if that is what it holds."""
    if isinstance(v, str) and v.strip().lower() in NO_DETAIL:
        return v.strip().lower()
    return None


def phash(image) -> int:
    """64-bit DCT perceptual hash (Zauner 2010) of the whole frame, as a Python int."""
    return _dct_hash(_gray_of(image).astype(np.float32))


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes (either sign: both taken modulo 2**64)."""
    return ((a ^ b) & _MASK64).bit_count()


def photo_distance(a, b) -> int:
    """The grouping distance of two photos: whole frame vs whole frame, or a centre crop of one vs the
    whole frame of the other, whichever is smallest. ``a``/``b``: :func:`photo_hashes` tuples, a single
    hash, or their hex form."""
    ha, hb = parse_hashes(a), parse_hashes(b)
    if ha is None or hb is None:
        raise ValueError("photo_distance needs two hashes")
    d = hamming(ha[0], hb[0])
    for k in range(1, len(CROP_LADDER)):
        d = min(d, hamming(ha[k], hb[0]), hamming(ha[0], hb[k]))
    return d


def hashes_hex(hashes) -> str | None:
    """Hashes as hex, 16 digits each, concatenated (for CSVs, reports and databases); None stays None."""
    if hashes is None:
        return None
    if isinstance(hashes, (int, np.integer)):
        hashes = (int(hashes),)
    return "".join(f"{int(h) & _MASK64:016x}" for h in hashes)


def phash_to_int64(h: int | None) -> int | None:
    """The same 64 bits as a *signed* int64, for databases without an unsigned 64-bit type."""
    if h is None:
        return None
    h &= _MASK64
    return h - (1 << 64) if h >= 1 << 63 else h


def _one(v) -> int | None:
    if isinstance(v, (bool, np.bool_)):
        return None
    if isinstance(v, (int, np.integer)):
        return int(v) & _MASK64
    if isinstance(v, float):
        # A float cannot hold 64 bits exactly; accept only exact small integers (NaN = missing).
        if math.isfinite(v) and v.is_integer() and abs(v) < 2 ** 53:
            return int(v) & _MASK64
    return None


def parse_hashes(v) -> tuple[int, ...] | None:
    """One cell of a ``phash`` column → a tuple of len(CROP_LADDER) unsigned ints, or None if missing.

    Accepts a :func:`photo_hashes` tuple/list/array, a single hash (int of either sign; its crop
    hashes are then taken equal to it), or hex (16 digits per hash, optionally ``0x``-prefixed).
    """
    k = len(CROP_LADDER)
    if v is None or v is pd.NA:
        return None
    if isinstance(v, str):
        s = v.strip().lower()
        if s.startswith("0x"):
            s = s[2:]
        if not s or s in ("nan", "none", "<na>"):
            return None
        try:
            if len(s) <= 16:
                parts = [int(s, 16)]
            elif len(s) % 16 == 0:
                parts = [int(s[i:i + 16], 16) for i in range(0, len(s), 16)]
            else:
                return None
        except ValueError:
            return None
    elif isinstance(v, (tuple, list, np.ndarray)):
        parts = [_one(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
        if not parts or any(p is None for p in parts):
            return None
    else:
        one = _one(v)
        if one is None:
            return None
        parts = [one]
    if len(parts) == 1:
        parts = parts * k
    if len(parts) != k:
        return None
    return tuple(parts)


def hash_matrix(values) -> tuple[np.ndarray, np.ndarray]:
    """A ``phash`` column → (n x len(CROP_LADDER) uint64 array, valid mask); see :func:`parse_hashes`."""
    parsed = [parse_hashes(v) for v in values]
    valid = np.array([p is not None for p in parsed], dtype=bool)
    zero = (0,) * len(CROP_LADDER)
    arr = np.array([p if p is not None else zero for p in parsed], dtype=np.uint64).reshape(-1, len(CROP_LADDER))
    return arr, valid


def hash_files(paths, workers: int | None = None) -> list[tuple[int, ...] | str | None]:
    """:func:`photo_hashes` of each file (decoded with :func:`imaging.decode`, the pipeline's way), or
    its :data:`NO_DETAIL` marker; None for a file that cannot be read. Threads: decoding and OpenCV
    release the GIL."""
    from concurrent.futures import ThreadPoolExecutor

    from iqc_dagster.core import imaging, names

    def one(p):
        if p is None or (isinstance(p, float) and math.isnan(p)):
            return None
        try:
            decoded = imaging.decode(names.real_path(str(p)))
            return no_detail(decoded) or photo_hashes(decoded)
        except (imaging.UnreadableImage, OSError, ValueError):
            return None

    paths = list(paths)
    with ThreadPoolExecutor(max_workers=workers or _workers()) as pool:
        return list(pool.map(one, paths))


def capture_times(paths) -> list:
    """EXIF capture time of each file (:func:`imaging.probe`, header only); None when unknown."""
    from iqc_dagster.core import imaging, names

    out = []
    for p in paths:
        try:
            out.append(imaging.probe(names.real_path(str(p))).captured_at)
        except (imaging.UnreadableImage, OSError, ValueError, TypeError):
            out.append(None)
    return out


# --- pairs and components -------------------------------------------------------------------------


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


def _workers() -> int:
    import os

    return max(1, min(4, os.cpu_count() or 1))


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
    workers = _workers()

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
    """Connected components of an undirected graph on 0..n-1: a root label per node (union-find)."""
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


# --- the table ------------------------------------------------------------------------------------


def _order(df: pd.DataFrame) -> np.ndarray:
    """Row positions from best to worst: final_score desc (NaN last), then rank, then path/file."""
    score = pd.to_numeric(df["final_score"], errors="coerce").to_numpy(dtype=float)
    score = np.where(np.isfinite(score), score, -np.inf)
    keys = []
    for col in ("path", "file"):
        if col in df.columns:
            keys.append(df[col].astype(str).to_numpy())
            break
    if "rank" in df.columns:
        r = pd.to_numeric(df["rank"], errors="coerce").to_numpy(dtype=float)
        keys.append(np.where(np.isfinite(r), r, np.inf))
    keys.append(-score)
    return np.lexsort(keys)  # last key is primary


def group_photos(df: pd.DataFrame, thresholds: Thresholds = DEFAULT_THRESHOLDS, *,
                 hash_column: str = "phash", time_column: str = "captured_at",
                 embedding_column: str = "embedding", sequences=None) -> pd.DataFrame:
    """A copy of ``df`` with the group columns added (:data:`GROUP_COLUMNS`); rows keep their order.

    Needs ``final_score`` and ``file`` (or ``path``; names in ``duplicate_of`` come from it). Optional:
    ``phash`` (a :func:`photo_hashes` tuple, a single int of either sign, or their hex; None/NaN =
    unknown), ``captured_at`` (datetime or string; NaT/None = unknown), ``embedding`` (1-D array, e.g.
    CLIP, or None). A missing optional column just removes that kind of edge.

    * ``group_id``: 1..G, numbered in order of each group's best pick (group 1 holds the top photo);
    * ``group_size``: photos in the group (1 for a photo unlike any other);
    * ``is_best_in_group``: True for the group's highest ``final_score``, and for every singleton;
    * ``group_kind``: ``""`` (singleton), ``"duplicate"`` (all edges near-duplicate) or ``"burst"``;
    * ``duplicate_of``: for the other members, the best pick's ``file`` (or ``path``); else None.

    ``sequences``: ``[(row positions, kind)]`` of exposure brackets and focus stacks
    (:func:`iqc_dagster.core.brackets.find_sequences`). Each becomes a group of that kind on its own:
    its frames join no other group, and every frame is kept (each ``is_best_in_group``, no
    ``duplicate_of``): they were shot to be merged, not chosen from.
    """
    if "final_score" not in df.columns:
        raise ValueError("group_photos needs a final_score column")
    name_col = "file" if "file" in df.columns else "path" if "path" in df.columns else None
    if name_col is None:
        raise ValueError("group_photos needs a path or file column")
    out = df.drop(columns=[c for c in GROUP_COLUMNS if c in df.columns]).copy()
    n = len(out)
    if n == 0:
        return mark_groups(out, [])
    hash_values = out[hash_column].tolist() if hash_column in out.columns else [None] * n
    hashes, hash_ok = hash_matrix(hash_values)
    seconds = _seconds(out[time_column], n) if time_column in out.columns else None
    emb, emb_ok = _embedding_matrix(out[embedding_column] if embedding_column in out.columns else None, n)
    blank = np.array([no_detail_marker(v) is not None for v in hash_values], dtype=bool)
    if blank.any():  # no information to compare: no hash edge, no CLIP edge, no burst edge
        hash_ok = hash_ok & ~blank
        emb_ok = emb_ok & ~blank
    names = out[name_col].astype(str).to_numpy()
    i, j, burst = similar_pairs(hashes, hash_ok, seconds, emb, emb_ok, thresholds, names=names)
    if "content_hash" in out.columns:  # byte-identical files are duplicates, whatever their pixels
        ii, jj = _identical_pairs(out["content_hash"].tolist())
        if ii.size:
            i, j = np.concatenate([i, ii]), np.concatenate([j, jj])
            burst = np.concatenate([burst, np.zeros(ii.size, bool)])
    seq_kinds = None
    if sequences:
        member = np.full(n, -1, dtype=np.int64)
        seq_kinds = np.full(n, None, dtype=object)
        for k, (rows, kind) in enumerate(sequences):
            member[list(rows)] = k
            seq_kinds[list(rows)] = kind
        keep = (member[i] < 0) & (member[j] < 0)  # sequence frames join no duplicate or burst group
        i, j, burst = i[keep], j[keep], burst[keep]
        for rows, _kind in sequences:
            rows = list(rows)
            i = np.concatenate([i, np.full(len(rows) - 1, rows[0], dtype=np.int64)])
            j = np.concatenate([j, np.asarray(rows[1:], dtype=np.int64)])
            burst = np.concatenate([burst, np.zeros(len(rows) - 1, bool)])
    roots = components(n, i, j)
    burst_rows = np.zeros(n, dtype=bool)
    burst_rows[i[burst]] = True
    return mark_groups(out, roots, burst_rows, kinds=seq_kinds)


def _identical_pairs(content_hashes) -> tuple[np.ndarray, np.ndarray]:
    """(first row, other row) of each set of rows with the same non-empty content hash."""
    first: dict[str, int] = {}
    ii, jj = [], []
    for k, h in enumerate(content_hashes):
        if not isinstance(h, str) or not h:
            continue
        if h in first:
            ii.append(first[h])
            jj.append(k)
        else:
            first[h] = k
    return np.array(ii, dtype=np.int64), np.array(jj, dtype=np.int64)


#: Group kinds whose every frame is kept (core/brackets.py): no frame is a lesser duplicate.
SEQUENCE_KINDS = ("bracket", "focus_stack")


#: The best pick of a group prefers open eyes and a sharp face over a marginally higher final score
#: (what a photographer picks from a burst): the pick compares ``final_score`` minus this much times
#: (1 - ``eyes_open``) and times (1 - ``face_sharpness_norm``); a missing score (no face) costs nothing.
FACE_PICK_MARGIN = {"eyes_open": 0.06, "face_sharpness_norm": 0.04}


def _pick_order(df: pd.DataFrame) -> np.ndarray:
    """Row positions from best to worst pick: :func:`_order`, by ``final_score`` less the face margins."""
    penalty = np.zeros(len(df))
    for col, margin in FACE_PICK_MARGIN.items():
        if col in df.columns:
            v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            penalty += np.where(np.isfinite(v), margin * (1.0 - np.clip(v, 0.0, 1.0)), 0.0)
    if not penalty.any():
        return _order(df)
    score = pd.to_numeric(df["final_score"], errors="coerce").to_numpy(dtype=float)
    adjusted = df.assign(final_score=np.where(np.isfinite(score), score - penalty, np.nan))
    return _order(adjusted.drop(columns=["rank"], errors="ignore"))


def mark_groups(df: pd.DataFrame, keys, burst_rows=None, kinds=None) -> pd.DataFrame:
    """Add :data:`GROUP_COLUMNS` to ``df`` given each row's group ``keys`` (equal key = same group) and,
    optionally, which rows take part in a burst link, and ``kinds``: per row, a
    :data:`SEQUENCE_KINDS` kind (or None) that overrides the group's kind and keeps every frame. The best pick of a group is its best-ranked row
    (:func:`_order`: highest ``final_score``) unless another member's open eyes or sharper face outweigh
    a marginally higher score (:data:`FACE_PICK_MARGIN`); groups are numbered by their best-ranked
    member (group 1 holds the top photo). Shared by :func:`group_photos` and the ranking, which applies stored groups."""
    out = df.drop(columns=[c for c in GROUP_COLUMNS if c in df.columns]).copy()
    n = len(out)
    if n == 0:
        for c, dtype in zip(GROUP_COLUMNS, ["int64", "int64", "bool", "object", "object"]):
            out[c] = pd.Series([], dtype=dtype, index=out.index)
        return out
    roots = np.asarray(keys)
    name_col = "file" if "file" in out.columns else "path"
    names = out[name_col].astype(str).to_numpy()
    order = _order(out)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)  # 0 = best photo of the table
    _, comp, sizes = np.unique(roots, return_inverse=True, return_counts=True)
    top_pos = np.full(sizes.size, n, dtype=np.int64)
    np.minimum.at(top_pos, comp, position)  # best-ranked member of each component
    pick = _pick_order(out)  # the best pick: ranked order, with a bonus for open eyes and a sharp face
    pick_position = np.empty(n, dtype=np.int64)
    pick_position[pick] = np.arange(n)
    best_pos = np.full(sizes.size, n, dtype=np.int64)
    np.minimum.at(best_pos, comp, pick_position)
    best_row = pick[best_pos]
    number = np.empty(sizes.size, dtype=np.int64)
    number[np.argsort(top_pos, kind="stable")] = np.arange(1, sizes.size + 1)  # group 1 holds the top photo
    bursty = np.zeros(sizes.size, dtype=bool)
    if burst_rows is not None:
        bursty[comp[np.asarray(burst_rows, dtype=bool)]] = True

    gid = number[comp]
    gsize = sizes[comp].astype(np.int64)
    is_best = best_row[comp] == np.arange(n)
    kind = np.where(gsize == 1, "", np.where(bursty[comp], "burst", "duplicate")).astype(object)
    if kinds is not None:
        seq = np.array([k in SEQUENCE_KINDS for k in kinds], dtype=bool) & (gsize > 1)
        kind[seq] = np.asarray(kinds, dtype=object)[seq]
        is_best = is_best | seq  # every frame of a bracket or focus stack is kept
    dup_of = np.where(is_best, None, names[best_row[comp]]).astype(object)
    out["group_id"] = gid
    out["group_size"] = gsize
    out["is_best_in_group"] = is_best
    out["group_kind"] = kind
    out["duplicate_of"] = dup_of
    return out


def group_summary(grouped: pd.DataFrame) -> dict:
    """Counts for logs and metadata: groups of 2+ photos, photos in them, non-best members."""
    if grouped.empty or "group_id" not in grouped.columns:
        return {"n_groups": 0, "n_grouped_photos": 0, "n_duplicates": 0}
    multi = grouped[grouped["group_size"] > 1]
    return {"n_groups": int(multi["group_id"].nunique()), "n_grouped_photos": int(len(multi)),
            "n_duplicates": int((~multi["is_best_in_group"].astype(bool)).sum())}

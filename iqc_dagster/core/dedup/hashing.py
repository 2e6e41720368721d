"""Perceptual hashes of a photo (the DCT hash over a crop ladder), blank/tiny frame markers, parsing
and comparing stored hashes (:func:`photo_hashes`, :func:`photo_distance`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from iqc_dagster.core.files import cpu_workers


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



def _gray_of(image) -> np.ndarray:
    """Luminance (uint8 or float, 2-D) at a long side of at most :data:`HASH_INPUT_SIDE`, from a
    Decoded, an H x W grey array or an H x W x 3 RGB array."""
    import cv2

    if hasattr(image, "gray_at"):  # imaging.Decoded, without importing it; gray_at never enlarges
        return image.gray_at(HASH_INPUT_SIDE)
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
    with ThreadPoolExecutor(max_workers=workers or cpu_workers()) as pool:
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



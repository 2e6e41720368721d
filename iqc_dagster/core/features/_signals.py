"""Signal-processing helpers shared by several features (no ``register`` here).

Results that more than one feature needs (the noise estimate) are cached on the
:class:`~iqc_dagster.core.imaging.Decoded` object, so each is computed once per photo. A feature whose
*measure* uses one of these helpers must bump its ``version`` when the helper changes.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

#: Immerkær's noise mask: the difference of two Laplacians, blind to planes and (mostly) to edges.
IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_IMMERKAER_NORM2 = float((IMMERKAER ** 2).sum())  # 36: E[(M*n)^2] = 36 sigma^2 for white noise

#: Side, in pixels of the decoded image, of the tiles the noise is estimated on.
NOISE_TILE = 32
#: Share of tiles, the quietest, whose median makes the estimate (1: all tiles).
NOISE_FLAT_SHARE = 0.5
#: E[|x| over the lower half of |x|] / sigma for Gaussian x: 4 (phi(0) - phi(0.6745)) = 0.3247.
_LOWER_HALF_MEAN = 0.3247
#: Variance (grey levels squared) of the rounding to 8 bits that every clean file carries (1/12).
QUANTISATION_VAR = 1.0 / 12.0


def tile_means(a: np.ndarray, tile: int) -> np.ndarray:
    """Mean of ``a`` over non-overlapping ``tile`` x ``tile`` blocks (the ragged border is dropped)."""
    h, w = a.shape
    th, tw = h // tile, w // tile
    if th == 0 or tw == 0:
        return np.array([[float(a.mean())]], np.float32)
    a = a[:th * tile, :tw * tile]
    return cv2.resize(a, (tw, th), interpolation=cv2.INTER_AREA)


def tile_noise_sigmas(gray: np.ndarray, tile: int = NOISE_TILE) -> np.ndarray:
    """Robust noise sigma (8-bit grey levels) of each ``tile`` x ``tile`` tile of ``gray``, flattened.

    Immerkær's residual (a difference of Laplacians, blind to planes and mostly to edges; CVIU 64(2),
    1996) has sigma ``6 sigma_n`` for white noise. Per tile its scale is read robustly: the mean of the
    smaller half of ``|residual|`` divided by its Gaussian value (0.3247 sigma), the idea of Donoho &
    Johnstone's median absolute deviation (Biometrika 81(3), 1994) without the integer steps a median
    of an 8-bit residual takes. Edges and sparse texture fall in the larger half and do not count.
    """
    r = cv2.filter2D(np.asarray(gray, np.float32), -1, IMMERKAER, borderType=cv2.BORDER_REFLECT)
    h, w = r.shape
    if min(h, w) < tile:
        tile = max(4, min(h, w))
    th, tw = h // tile, w // tile
    a = np.abs(r[:th * tile, :tw * tile]).reshape(th, tile, tw, tile).transpose(0, 2, 1, 3)
    a = a.reshape(th * tw, tile * tile)
    k = a.shape[1] // 2
    lower = np.partition(a, k - 1, axis=1)[:, :k].mean(axis=1)
    return lower / _LOWER_HALF_MEAN / math.sqrt(_IMMERKAER_NORM2)


def noise_sigma(gray: np.ndarray, flat_share: float | None = None) -> float:
    """Standard deviation (8-bit grey levels) of the noise in ``gray``, robust to edges and sparse texture.

    The median of :func:`tile_noise_sigmas` over the quietest ``NOISE_FLAT_SHARE`` of the tiles (noise is
    everywhere, structure is not), less the 8-bit rounding every file carries (in quadrature), so a clean
    photo reads about 0. Measured on pixels no interpolation has touched (a resize colours the noise).

    Why not a scale-invariance test (Zoran & Weiss, ICCV 2009, the estimator before ``mad1``): it cancels
    noise that is correlated over neighbouring pixels together with the texture it is meant to ignore,
    and camera noise after demosaicing and noise reduction is correlated (docs/ranking.md, "Noise").
    Limit: texture dense at the pixel scale everywhere in the frame (grass, foliage, gravel seen whole in
    a small file) reads as some noise.
    """
    g = np.asarray(gray)
    if min(g.shape[:2]) < 8:
        return 0.0
    s = tile_noise_sigmas(g)
    share = NOISE_FLAT_SHARE if flat_share is None else flat_share
    if share < 1.0 and s.size > 4:
        k = max(4, int(round(share * s.size)))
        s = np.partition(s, k - 1)[:k]
    return float(math.sqrt(max(0.0, float(np.median(s)) ** 2 - QUANTISATION_VAR)))


def cached_noise_sigma(decoded) -> float:
    """:func:`noise_sigma` of ``decoded.fine_gray`` (pixels no interpolation touched), in fine-image grey
    levels; once per photo. A large file's fine image is the source reduced 2-4x by DCT scaling or an
    exact box average, which also whitens noise that the camera had correlated over a few pixels."""
    key = ("noise_sigma",)
    cache = decoded._cache
    if key not in cache:
        cache[key] = noise_sigma(decoded.fine_gray)
    return cache[key]


def log_filter(g: np.ndarray, sigma: float) -> np.ndarray:
    """Laplacian of Gaussian (Gaussian pre-smoothing at ``sigma`` px, then the 3x3 Laplacian)."""
    gf = np.asarray(g, np.float32)
    if sigma > 0:
        gf = cv2.GaussianBlur(gf, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    return cv2.Laplacian(gf, cv2.CV_32F, borderType=cv2.BORDER_REFLECT)


@lru_cache(maxsize=256)
def noise_gain(scale: float, sigma: float) -> float:
    """Mean squared :func:`log_filter` response to unit white noise that was first resized by ``scale``.

    Lets a detail measure taken after resizing subtract the noise's share exactly: resizing colours the
    noise, so the plain kernel norm would be wrong for any scale but 1. Estimated once per (scale, sigma)
    on a fixed-seed noise field large enough for a ~1% error.
    """
    out_side = 384  # pixels of the resized field: enough for a ~1% estimate, bounded for any scale
    side = max(8, round(out_side / scale)) if scale > 1 else out_side
    n = np.random.default_rng(12345).standard_normal((side, side)).astype(np.float32)
    if abs(scale - 1.0) > 1e-3:
        size = max(16, round(side * scale))
        n = cv2.resize(n, (size, size), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    r = log_filter(n, sigma)[4:-4, 4:-4]
    return float(np.mean(r * r))


def blockiness(gray: np.ndarray, period: int = 8) -> float:
    """Relative excess of the steps across a grid of ``period`` pixels (JPEG blocking); about 0 when clean.

    After Wang, Sheikh & Bovik, "No-reference perceptual quality assessment of JPEG compressed images",
    ICIP 2002: blocking shows as larger luminance differences across block boundaries than inside blocks.
    The column profile of mean absolute horizontal differences is folded modulo ``period``; ``H``, the
    magnitude of its first Fourier harmonic relative to its sum, is the periodic part (a 2x or 4x upscale
    only adds energy at higher harmonics, so it is not mistaken for blocking). Same for rows; mean of the
    two. Returned as ``e = period * H / (1 - H)``: for boundary differences ``1 + e`` times the others,
    ``H = e / (period + e)`` exactly, so ``e`` means the same at every period. A JPEG decoded at 1/s
    DCT scale has its blocks at ``8 / s`` pixels: pass that period. Needs pixels that no interpolation
    has touched (a resize smears the grid). 0 (nothing visible) for a period under 2 or an image too small.
    """
    g = np.asarray(gray)
    if period < 2:
        return 0.0
    out = []
    k = np.exp(-2j * np.pi * np.arange(period) / period)
    for axis in (1, 0):  # differences along x (profile over columns), then along y (over rows)
        if g.shape[axis] < 4 * period + 1:
            continue
        d = cv2.absdiff(g[:, 1:], g[:, :-1]) if axis == 1 else cv2.absdiff(g[1:], g[:-1])
        prof = cv2.reduce(d, 0 if axis == 1 else 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
        n = prof.size // period * period
        folded = prof[:n].reshape(-1, period).sum(axis=0).astype(np.float64)
        total = folded.sum()
        h = float(abs(np.sum(folded * k)) / total) if total > 0 else 0.0
        out.append(period * h / max(1e-9, 1.0 - h))
    return float(np.mean(out)) if out else 0.0

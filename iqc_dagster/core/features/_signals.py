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

from iqc_dagster.core.imaging import box_reduce

#: Immerkær's noise mask: the difference of two Laplacians, blind to planes and (mostly) to edges.
IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_IMMERKAER_NORM2 = float((IMMERKAER ** 2).sum())  # 36: E[(M*n)^2] = 36 sigma^2 for white noise

#: Side, in pixels of the decoded image, of the tiles the noise is estimated on.
NOISE_TILE = 32
#: Share of tiles, the quietest, whose median makes the scale-invariant estimate (1: all tiles).
NOISE_FLAT_SHARE = 0.5
#: The robust estimate (:func:`noise_sigma`) is this quantile of the tiles' scales ...
NOISE_QUANTILE = 0.10
#: ... times this, so that white noise reads as it did with the median of the quieter half (``mad2``;
#: the 10% quantile of 32 px tiles' scales is 0.962 of that median for white noise, measured).
NOISE_QUANTILE_GAIN = 1.04
#: Tiles with more than this share of clipped pixels (grey <= 1 or >= 254) are left out: noise does not
#: show where the signal is clipped, and a blown sky's zero residual would pass for a clean photo. When
#: every tile is clipped that much (a night shot crushed everywhere) the least clipped tiles are used.
NOISE_CLIPPED_SHARE = 0.10
#: Version of :func:`cached_noise_sigma`: every feature that reads the estimate carries it in its own.
NOISE_ESTIMATOR_VERSION = "mad4"
#: On a reduced decode the noise is at least this share of the robust estimate (:func:`noise_sigma`) of the
#: fine pixels (``mad4``). The scale-invariance test cancels noise with texture whose finest octave is
#: weaker than the next (soft at the pixel scale, as demosaicing and JPEG leave camera files): σ 30 noise
#: on a 4000 px forest read 0. The robust estimate sees it but reads dense texture as noise too, so only a
#: quarter of it counts: enough to rank a noisy copy below its original, too little to cut a clean
#: textured photo much. The smallest of 0.25 / 0.5 / 0.75 / 1 that reached the best calibration figures.
REDUCED_ROBUST_SHARE = 0.25
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


def noise_tile(shape, tile: int = NOISE_TILE) -> int:
    """Side of the tiles :func:`tile_noise_sigmas` cuts an image of ``shape`` into: ``tile``, or the short
    side (at least 4) of a smaller image."""
    short = min(shape[:2])
    return tile if short >= tile else max(4, short)


def quiet_floor(tile_energies, share: float) -> float:
    """Energy of the quietest ``share`` of the tiles (their ``share`` quantile): what noise alone puts in
    every tile, a lower bound on its part of each; NaN for fewer than ``1 / share`` tiles."""
    e = np.asarray(tile_energies).ravel()
    return float(np.quantile(e, share)) if e.size * share >= 1.0 else math.nan


def immerkaer_residual(gray: np.ndarray) -> np.ndarray:
    """Immerkær's residual of ``gray`` (float32, reflected border): what both noise estimates read."""
    return cv2.filter2D(np.asarray(gray, np.float32), -1, IMMERKAER, borderType=cv2.BORDER_REFLECT)


def tile_noise_sigmas(gray: np.ndarray, tile: int = NOISE_TILE, residual: np.ndarray | None = None
                      ) -> np.ndarray:
    """Robust noise sigma (8-bit grey levels) of each ``tile`` x ``tile`` tile of ``gray``, flattened.

    Immerkær's residual (a difference of Laplacians, blind to planes and mostly to edges; CVIU 64(2),
    1996) has sigma ``6 sigma_n`` for white noise. Per tile its scale is read robustly: the mean of the
    smaller half of ``|residual|`` divided by its Gaussian value (0.3247 sigma), the idea of Donoho &
    Johnstone's median absolute deviation (Biometrika 81(3), 1994) without the integer steps a median
    of an 8-bit residual takes. Edges and sparse texture fall in the larger half and do not count.
    """
    r = immerkaer_residual(gray) if residual is None else residual
    h, w = r.shape
    tile = noise_tile(r.shape, tile)
    th, tw = h // tile, w // tile
    a = np.abs(r[:th * tile, :tw * tile]).reshape(th, tile, tw, tile).transpose(0, 2, 1, 3)
    a = a.reshape(th * tw, tile * tile)
    k = a.shape[1] // 2
    lower = np.partition(a, k - 1, axis=1)[:, :k].mean(axis=1)
    return lower / _LOWER_HALF_MEAN / math.sqrt(_IMMERKAER_NORM2)


def noise_sigma(gray: np.ndarray, residual: np.ndarray | None = None) -> float:
    """Standard deviation (8-bit grey levels) of the noise in ``gray``, robust to edges and sparse texture;
    sees noise correlated over neighbouring pixels (the estimate for pixels decoded at full scale).

    The :data:`NOISE_QUANTILE` quantile of :func:`tile_noise_sigmas` (noise is in every tile, structure is
    not: the quietest tiles say how much of the residual is noise), times :data:`NOISE_QUANTILE_GAIN`,
    over the tiles that are not clipped (:data:`NOISE_CLIPPED_SHARE`), less the 8-bit rounding every file
    carries (in quadrature), so a clean photo reads about 0. Measured on pixels no interpolation has
    touched (a resize colours the noise). Until ``mad3`` it was the median of the quieter half of the
    tiles, which read texture that fills most of a small frame (grass, a field of flowers) as noise
    (`life` at 640 px: 5.4); the 10% quantile finds the frame's least textured tiles (3.7).

    Why not :func:`scale_invariant_sigma` here: it cancels noise that is correlated over neighbouring
    pixels together with the texture it is meant to ignore, and camera noise after demosaicing and noise
    reduction, or film grain, is correlated at full scale (docs/ranking.md, "Noise"). Limit: texture dense
    at the pixel scale everywhere in the frame (grass, foliage, gravel seen whole in a small file) reads
    as some noise.
    """
    g = np.asarray(gray)
    if min(g.shape[:2]) < 8:
        return 0.0
    s = tile_noise_sigmas(g, residual=residual)
    clipped = tile_means(((g <= 1) | (g >= 254)).astype(np.float32), noise_tile(g.shape)).ravel()
    keep = clipped <= NOISE_CLIPPED_SHARE
    if not keep.any():  # clipped everywhere (a dark night shot): the least clipped tiles still show it
        keep = clipped <= clipped.min()
    s = s[keep]
    v = float(np.quantile(s, NOISE_QUANTILE)) * NOISE_QUANTILE_GAIN
    return float(math.sqrt(max(0.0, v * v - QUANTISATION_VAR)))


def scale_invariant_sigma(gray: np.ndarray, residual: np.ndarray | None = None) -> float:
    """Standard deviation (8-bit grey levels) of *white* noise in ``gray``, blind to fine texture.

    Immerkær's residual measures noise plus fine texture. Natural images are statistically scale
    invariant (Field 1987; Ruderman 1994), so their residual power is about the same after a 2x
    reduction, whereas white noise loses 3/4 of its power (the mean of 4 pixels has a quarter of the
    variance). Per tile: ``n^2 = (R1 - R2) / (3/4)`` with ``R1``, ``R2`` the residual powers at full
    and half resolution, floored at 0; the median over the flattest ``NOISE_FLAT_SHARE`` of the tiles
    (lowest half-resolution residual). The scale-invariance idea of Zoran & Weiss, "Scale invariance and
    noise in natural images", ICCV 2009, with Immerkær's mask as the band-pass filter. Noise already
    correlated over neighbouring pixels is under-estimated (it survives the reduction like texture).
    """
    g = np.asarray(gray, np.float32)
    h, w = g.shape
    h2, w2 = (h // 2) * 2, (w // 2) * 2
    if h2 < 8 or w2 < 8:
        return 0.0
    g = g[:h2, :w2]
    r1 = immerkaer_residual(g) if residual is None else residual[:h2, :w2]
    half = cv2.resize(g, (w2 // 2, h2 // 2), interpolation=cv2.INTER_AREA)
    r2 = cv2.filter2D(half, -1, IMMERKAER, borderType=cv2.BORDER_REFLECT)
    tile = NOISE_TILE if min(h2, w2) >= 2 * NOISE_TILE else max(4, (min(h2, w2) // 2) // 2 * 2)
    p1 = tile_means(cv2.multiply(r1, r1), tile)
    p2 = tile_means(cv2.multiply(r2, r2), tile // 2)
    th, tw = min(p1.shape[0], p2.shape[0]), min(p1.shape[1], p2.shape[1])
    p1, p2 = p1[:th, :tw].ravel(), p2[:th, :tw].ravel()
    n2 = np.maximum(0.0, (p1 - p2) / 0.75) / _IMMERKAER_NORM2
    if NOISE_FLAT_SHARE < 1.0 and n2.size > 4:
        k = max(4, int(round(NOISE_FLAT_SHARE * n2.size)))
        n2 = n2[np.argpartition(p2, k - 1)[:k]]
    return float(math.sqrt(float(np.median(n2))))


def cached_noise_sigma(decoded) -> float:
    """Noise sigma of ``decoded.fine_gray`` (pixels no interpolation touched), in fine-image grey levels
    as white noise would read there; once per photo. The estimator depends on how the fine image was made:

    * **decoded at full scale** (``reduction`` 1: files up to 1535 px): :func:`noise_sigma`, which sees
      noise that demosaicing, in-camera noise reduction or film grain has correlated over neighbouring
      pixels (at full scale such noise looks like image structure to a scale-invariance test);
    * **reduced 2-4x** (DCT scaling or an exact box average: camera-sized files): each fine pixel averages
      2 x 2 or 4 x 4 source pixels, which whitens that noise, so the texture-blind
      :func:`scale_invariant_sigma` applies, on the fine image and on its 2 x 2 box average (x2), the
      larger kept. It cancels noise together with texture that is soft at the pixel scale, so the robust
      estimate, which sees that noise but reads dense texture (foliage, a field of flowers) as noise too,
      bounds it from below at :data:`REDUCED_ROBUST_SHARE` of its reading (``mad4``).
    """
    key = ("noise_sigma",)
    cache = decoded._cache
    if key not in cache:
        g = decoded.fine_gray
        if decoded.reduction < 2:
            cache[key] = noise_sigma(g)
        else:
            r = immerkaer_residual(g)  # computed once for both estimates
            best = max(scale_invariant_sigma(g, r), REDUCED_ROBUST_SHARE * noise_sigma(g, r))
            if min(g.shape) >= 4 * NOISE_TILE:
                best = max(best, 2 * scale_invariant_sigma(box_reduce(g, 2)))
            cache[key] = best
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

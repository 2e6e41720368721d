"""Exposure quality from the histogram (v3): a normal key, few clipped pixels.

The seed's "exposure = mean brightness" rewards blown-out shots. Here exposure is judged the way a
photographer reads a histogram:

* **Key**: ``mean_luma`` (0..1, grey at 512 px). No penalty inside a wide band of normal keys, 0.15-0.70,
  so low-key and high-key photos are not pushed to mid-grey; outside it the factor falls linearly to 0
  at 0.02 and 0.98 (cf. the well-exposedness weight of Mertens, Kautz & Van Reeth, "Exposure Fusion",
  Pacific Graphics 2007, which favours values away from both ends). The mean, unlike the median, is
  unchanged by blur, noise and JPEG, so only a change of exposure moves it.
* **Blown highlights**: ``clipped_highlights``, on the brightest channel of each pixel (a blown channel
  loses detail even when the luma is below white), every second pixel: the larger of the share at
  >= 250 and the *pile-up* at the top of that histogram (``highlight_pile``): the pixels in the top 6
  levels in excess of the density of the 18 levels below. Clipping leaves such a pile wherever the top
  is; it stays a pile when a clipped photo is darkened or flattened afterwards, whereas a natural
  histogram thins out towards its maximum. Factor ``exp(-2.5 * sqrt(max(0, h - 0.005)))``: half a
  percent of blown pixels (speculars, lamps) is free, the square root makes the next few percent count
  (0.74 at 2%), and the factor keeps falling as more of the frame clips (0.26 at 30%).
  **Compact blown areas weigh less** (``clipped_interior``, ``hist8``): the counted pixels whose whole
  5 x 5 neighbourhood at 512 px is counted too lie inside a compact blown area (a lamp, the sun, a
  featureless sky or bright out-of-focus background) and count a fifth (``INTERIOR_WEIGHT``); the ones
  near a border count in full. Such an area's inside never held detail to lose, whereas clipping that
  breaks into fragments eats into textured detail: an over-exposed copy's clouds, snow and foliage, or a
  noisy copy's speckled highlights.
* **Crushed shadows**: ``clipped_shadows``, share of grey pixels <= 5. A much gentler factor,
  ``exp(-0.3 * sqrt(max(0, s - 0.01)))``: black backgrounds are common in good photos, and
  under-exposure already shows in the key and lowers contrast and detail.

Score = the product of the three factors, absolute. ``median_luma`` is kept for reference.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from iqc_dagster.core import imaging
from iqc_dagster.core.features import _signals, register

LONG_SIDE = 512
KEY_STAT = "median_luma"  # the statistic that places the key
NORMAL_KEY = (0.15, 0.70)  # band of the key with no penalty
KEY_LIMITS = (0.02, 0.98)  # mean luma at which the key factor reaches 0
PILE_TOP, PILE_BELOW = 6, 18  # grey levels in the top window and in the reference window below it
HIGHLIGHT_LEVEL = 250
SHADOW_LEVEL = 5
HIGHLIGHT_FREE, HIGHLIGHT_K = 0.005, 2.5  # share of blown pixels without penalty; steepness
#: Share of the brightest pixels ignored when placing the top of the histogram for the pile-up: as many
#: as the highlights are allowed for free. JPEG ringing at the edges of a clipped area, darkened with it,
#: leaves a thin tail of ~0.3% above the pile, which 0.05% (before ``hist6``) took for the top.
PILE_STRAY = HIGHLIGHT_FREE
SHADOW_FREE, SHADOW_K = 0.01, 0.3
#: Weight of the counted highlight pixels that lie inside a compact blown area (their whole
#: ``2 INTERIOR_RADIUS + 1`` square at ``LONG_SIDE`` is counted too); measured on the benchmark's 640-1024
#: px files at radius 1, 2, 4 x weight 0.2, 0.4, 0.6 (docs/ranking.md, "Exposure").
INTERIOR_WEIGHT, INTERIOR_RADIUS = 0.2, 2


def key_factor(mean: float) -> float:
    lo, hi = NORMAL_KEY
    if mean < lo:
        return max(0.0, (mean - KEY_LIMITS[0]) / (lo - KEY_LIMITS[0]))
    if mean > hi:
        return max(0.0, (KEY_LIMITS[1] - mean) / (KEY_LIMITS[1] - hi))
    return 1.0


def highlight_factor(share: float) -> float:
    return math.exp(-HIGHLIGHT_K * math.sqrt(max(0.0, share - HIGHLIGHT_FREE)))


def shadow_factor(share: float) -> float:
    return math.exp(-SHADOW_K * math.sqrt(max(0.0, share - SHADOW_FREE)))


def highlight_weight(interior: float) -> float:
    """Share of a blown area's pixels that count when ``interior`` of them lie inside compact areas."""
    return 1.0 - (1.0 - INTERIOR_WEIGHT) * min(1.0, max(0.0, interior))


def pile_floor(hist: np.ndarray, top_levels: int = PILE_TOP) -> int:
    """Lowest level of the top window of :func:`top_pile`."""
    from_top = np.cumsum(hist[::-1])
    vmax = 255 - int(np.searchsorted(from_top, PILE_STRAY))  # the top of the histogram, strays ignored
    return max(0, vmax - top_levels + 1)


def top_pile(hist: np.ndarray, top_levels: int = PILE_TOP) -> float:
    """Share of pixels piled up in the top ``top_levels`` levels of ``hist`` (normalised), beyond the
    density of the ``PILE_BELOW`` levels under them; 0 for a histogram that thins out at its top.

    The top is placed where all but the brightest :data:`PILE_STRAY` of the pixels lie, and those
    brightest pixels count in the pile too (they may be its upper edge)."""
    lo_top = pile_floor(hist, top_levels)
    vmax = lo_top + top_levels - 1
    lo_below = max(0, lo_top - PILE_BELOW)
    top = float(hist[lo_top:].sum())
    if lo_top == lo_below:
        return 0.0
    density = float(hist[lo_below:lo_top].sum()) / (lo_top - lo_below)
    return max(0.0, top - (vmax + 1 - lo_top) * density)


def _score(m):
    blown = m["clipped_highlights"] * highlight_weight(m["clipped_interior"])
    return key_factor(m[KEY_STAT]) * highlight_factor(blown) * shadow_factor(m["clipped_shadows"])


def interior_share(mask: np.ndarray, radius: int = INTERIOR_RADIUS) -> float:
    """Share of the pixels of ``mask`` (uint8 0/1) whose whole ``2 radius + 1`` square is in ``mask``."""
    n = int(mask.sum())
    if not n:
        return 0.0
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return float(cv2.erode(mask, kernel, borderType=cv2.BORDER_REPLICATE).sum()) / n


def noise_margin(decoded) -> int:
    """Grey levels by which noise moves clipped pixels off the clipping level at ``LONG_SIDE``.

    Noise is clipped at 0 and 255 along with the signal, so a crushed shadow reads as the mean of
    rectified noise, ``sigma / sqrt(2 pi)`` ~ 0.4 sigma of the source's pixels whatever the later
    reduction, and spreads by the sigma left at this view. Both shift the clipping levels (0 for a clean
    photo, whose thresholds are the fixed ones).
    """
    fine = _signals.cached_noise_sigma(decoded)
    native = fine * decoded.reduction
    at_view = fine * min(1.0, LONG_SIDE / decoded.fine_long_side)
    return int(round(0.4 * native + 2.0 * at_view))


@register("exposure", column="exposure_norm", version=f"hist8+{_signals.NOISE_ESTIMATOR_VERSION}",
          score=_score,
          description="mean luminance in a normal band, penalised by blown highlights (any channel) and "
                      "crushed shadows")
def measure(decoded):
    g = decoded.gray_at(LONG_SIDE)
    hist = np.bincount(g.ravel(), minlength=256).astype(np.float64)
    n = hist.sum()
    cdf = np.cumsum(hist) / n
    margin = noise_margin(decoded)
    sub = imaging._area(decoded.rgb, LONG_SIDE)  # area-averaged (not sub-sampled), so noise averages out
    brightest = np.maximum(np.maximum(sub[..., 0], sub[..., 1]), sub[..., 2])
    bhist = np.bincount(brightest.ravel(), minlength=256).astype(np.float64) / brightest.size
    pile = top_pile(bhist, PILE_TOP + margin)
    share = float(bhist[HIGHLIGHT_LEVEL - margin:].sum())
    blown = max(share, pile)
    floor = HIGHLIGHT_LEVEL - margin if share >= pile else pile_floor(bhist, PILE_TOP + margin)
    return {
        "mean_luma": float((hist * np.arange(256)).sum() / n / 255.0),
        "median_luma": float(np.searchsorted(cdf, 0.5) / 255.0),
        "clipped_highlights": blown,
        "highlight_pile": pile,
        "clipped_interior": interior_share((brightest >= floor).astype(np.uint8)),
        "clipped_shadows": float(hist[:SHADOW_LEVEL + margin + 1].sum() / n),
        "clip_margin": float(margin),
    }

"""Sharpness (v2): noise-robust, subject-aware detail, discounted for measured noise and JPEG blocking.

The seed used the variance of the Laplacian over the whole frame (Pech-Pacheco et al., ICPR 2000). It
fails three ways: white noise *raises* it (a noisy copy beats the clean photo), JPEG block edges add to
it, and one global figure punishes a sharp subject on a deliberately soft (bokeh) background.

Measurement, on the grey image at a fixed 512 px long side (so the figure does not depend on the file's
resolution):

* **Scale above the noise.** A Laplacian of Gaussian with sigma = 1 px (Marr & Hildreth 1980) instead
  of the bare 3x3 Laplacian: its gain for pixel-level white noise is ~180x lower, while a 1-2 px blur
  still removes most of its response. Laplacian-based operators are among the best focus measures in
  Pertuz, Puig & Garcia, "Analysis of focus measure operators for shape-from-focus", Pattern
  Recognition 46(5), 2013; the pre-smoothing is their advice for noisy images.
* **Noise compensation.** The noise estimate of :mod:`.noise` (sigma at the decoded resolution) is turned
  into the energy it contributes after resizing to 512 px and filtering (:func:`._signals.noise_gain`)
  and subtracted from each tile's energy; or, when larger, the energy of the quietest 10% of the tiles
  (``NOISE_FLOOR_SHARE``): noise is in every tile, whatever its spectrum, while a clean photo's quietest
  tiles (sky, a wall, a soft background) hold next to nothing. That floor catches noise correlated over
  neighbouring pixels, which carries more energy in this band than white noise of the same measured sigma.
* **Subject-aware.** The frame is cut into 32 px tiles; ``detail_subject`` is the mean energy of the
  best 10% of tiles, so a sharp subject on a blurred background scores as sharp (the "clear region"
  idea of Luo & Tang, "Photo and video quality evaluation: focusing on the subject", ECCV 2008).
  ``detail_global`` (all tiles) is kept for reference. Both are ``log10(1 + energy)``.

Score (absolute, never relative to the album): ``detail_subject`` mapped linearly from 0.2 (nothing in
focus) to 3.0 (crisp, strong texture), times the noise factor (:func:`.noise.noise_factor`) and the
blocking factor (:func:`.blockiness.blocking_factor`), whose measurements the score reads via ``inputs``.
``laplacian_var`` (the seed's figure, at 512 px) stays in the CSV for comparison only.

Its ``version`` carries :data:`._signals.NOISE_ESTIMATOR_VERSION` (the compensation uses the estimate).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from iqc_dagster.core.features import _signals, ramp, register

LONG_SIDE = 512
LOG_SIGMA = 1.0  # px at LONG_SIDE
TILE = 32  # px at LONG_SIDE: a 16 x 16 grid on a square photo
TOP_SHARE = 0.10  # share of tiles that make the "subject"
NOISE_FLOOR_SHARE = 0.10  # share of tiles, the quietest, whose energy bounds the noise's share from below
DETAIL_RANGE = (0.2, 3.0)  # log10(1 + energy): blurred beyond use .. crisp


def detail_score(detail_subject: float) -> float:
    """Absolute [0, 1] score of the subject's detail alone (no noise or blocking discount)."""
    return ramp(detail_subject, *DETAIL_RANGE)


def _score(m):
    s = detail_score(m["detail_subject"])
    if not math.isfinite(s):
        return math.nan
    from iqc_dagster.core.features.blockiness import blocking_factor
    from iqc_dagster.core.features.noise import noise_factor

    nf = noise_factor(m.get("noise_sigma", math.nan))
    bf = blocking_factor(m.get("jpeg_blockiness", math.nan), m.get("jpeg_quality", math.nan))
    return s * (nf if math.isfinite(nf) else 1.0) * (bf if math.isfinite(bf) else 1.0)


@register("sharpness", column="sharpness_norm", version=f"detail6+{_signals.NOISE_ESTIMATOR_VERSION}",
          score=_score,
          inputs=("noise", "blockiness"),
          description="noise-compensated LoG detail of the best 10% of tiles at 512 px, discounted by noise "
                      "and JPEG blocking")
def measure(decoded):
    g = decoded.gray_at(LONG_SIDE)
    scale = max(g.shape) / decoded.fine_long_side  # the area reduction from the fine image (<= 1)
    sigma_n = _signals.cached_noise_sigma(decoded)
    resp = _signals.log_filter(g, LOG_SIGMA)
    energy = _signals.tile_means(cv2.multiply(resp, resp), TILE).ravel()
    noise_energy = sigma_n * sigma_n * _signals.noise_gain(round(scale, 2), LOG_SIGMA)
    floor = _signals.quiet_floor(energy, NOISE_FLOOR_SHARE)
    if math.isfinite(floor):
        noise_energy = max(noise_energy, floor)
    clean = np.maximum(energy - noise_energy, 0.0)
    k = max(1, int(round(TOP_SHARE * clean.size)))
    top = np.partition(clean, clean.size - k)[-k:]
    lap = cv2.Laplacian(g, cv2.CV_32F)
    return {
        "detail_subject": float(math.log10(1.0 + float(top.mean()))),
        "detail_global": float(math.log10(1.0 + float(clean.mean()))),
        "laplacian_var": float(lap.var()),
    }

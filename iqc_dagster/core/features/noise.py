"""Noise: standard deviation of white noise, blind to fine texture (v1).

``noise_sigma`` is in 8-bit grey levels at the decoded resolution, estimated per 32 px tile from how
Immerkær's residual ("Fast noise variance estimation", CVIU 64(2), 1996) changes under a 2x reduction:
natural images are scale invariant, white noise is not (Zoran & Weiss, "Scale invariance and noise in
natural images", ICCV 2009). Grass or gravel, which fool a plain residual, read as clean. See
:func:`._signals.noise_sigma`.

Score: ``1 / (1 + (sigma / 6)^2)``: 1.0 for a clean photo, 0.5 at sigma = 6 (PSNR ~33 dB, clearly
visible in flat areas), ~0.1 at sigma = 18. The same factor discounts the sharpness score.
"""

from __future__ import annotations

import math

from iqc_dagster.core.features import _signals, register

NOISE_HALF = 6.0  # grey levels of noise at which the factor is 0.5


def noise_factor(sigma: float) -> float:
    """[0, 1] factor, 1 for no noise; NaN stays NaN."""
    if not math.isfinite(sigma):
        return math.nan
    return 1.0 / (1.0 + (max(0.0, sigma) / NOISE_HALF) ** 2)


def _score(m):
    return noise_factor(m["noise_sigma"])


@register("noise", column="noise_norm", version="zw1", score=_score,
          description="absence of white noise (scale-invariance noise estimate; 1 = clean)")
def measure(decoded):
    return {"noise_sigma": float(_signals.cached_noise_sigma(decoded))}

"""JPEG blockiness: the 8-pixel grid of steps left by strong JPEG compression (v1).

``jpeg_blockiness`` is the first Fourier harmonic of the 8-periodic column (and row) profile of absolute
neighbour differences, relative to its mean (after Wang, Sheikh & Bovik, "No-reference perceptual
quality assessment of JPEG compressed images", ICIP 2002; see :func:`._signals.blockiness`). Clean
photos read 0.00-0.03; JPEG quality 30 about 0.05-0.10, quality 6 about 0.15-0.30.

It needs the grid intact, so it reads the decoded pixels before any resize: for photos decoded at a
reduced scale (most camera files) the grid is gone, and so is its visibility at that size.

Score: ``1 - ramp(b, 0.03, 0.25)``; the same factor discounts the sharpness score, because blocking
edges otherwise count as detail.
"""

from __future__ import annotations

import math

from iqc_dagster.core.features import _signals, ramp, register

BLOCK_RANGE = (0.03, 0.25)


def blocking_factor(b: float) -> float:
    """[0, 1] factor, 1 for no visible blocking; NaN stays NaN."""
    if not math.isfinite(b):
        return math.nan
    return 1.0 - ramp(b, *BLOCK_RANGE)


def _score(m):
    return blocking_factor(m["jpeg_blockiness"])


@register("blockiness", column="blockiness_norm", version="wsb1", score=_score,
          description="absence of JPEG 8x8 blocking (1 = none visible)")
def measure(decoded):
    return {"jpeg_blockiness": _signals.blockiness(decoded.gray)}

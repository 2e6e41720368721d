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

BLOCK_RANGE = (0.25, 2.7)


#: Below this IJG quality a JPEG has thrown detail away (ringing, smeared texture at 100%) even where no
#: block grid shows; the factor falls linearly to ``1 - QUALITY_PENALTY`` at ``QUALITY_RANGE[1]``.
#: Cameras write 90-98, phones 85-95, web exports 70-90: none of those is penalised below 80 by much.
QUALITY_RANGE = (80.0, 20.0)
QUALITY_PENALTY = 0.25


def quality_factor(q: float) -> float:
    """[0, 1] factor for the file's JPEG quality; 1 for quality >= 80 and for files that are not JPEGs."""
    if not math.isfinite(q):
        return 1.0
    return 1.0 - QUALITY_PENALTY * ramp(q, *QUALITY_RANGE)


def blocking_factor(b: float, quality: float = math.nan) -> float:
    """[0, 1] factor, 1 for no visible blocking and no heavy compression; NaN blocking stays NaN."""
    if not math.isfinite(b):
        return math.nan
    return (1.0 - ramp(b, *BLOCK_RANGE)) * quality_factor(quality)


def _score(m):
    return blocking_factor(m["jpeg_blockiness"], m.get("jpeg_quality", math.nan))


def block_period(decoded) -> int:
    """Pixels per JPEG block in the fine image: 8 at full scale, 4 at 1/2, 2 at 1/4."""
    return max(1, 8 // decoded.reduction)


@register("blockiness", column="blockiness_norm", version="wsb2", score=_score,
          description="absence of JPEG 8x8 blocking, read on the unresampled grid (1 = none visible)")
def measure(decoded):
    out = {"jpeg_blockiness": _signals.blockiness(decoded.fine_gray, block_period(decoded))}
    if math.isfinite(decoded.jpeg_quality):  # not a JPEG: no quality to record
        out["jpeg_quality"] = float(decoded.jpeg_quality)
    return out

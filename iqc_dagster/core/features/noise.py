"""Noise: standard deviation of the noise at a 1024 px view (``mad4``).

``noise_sigma`` is in 8-bit grey levels at a 1024 px view, from ``noise_sigma_fine`` measured on the fine
image (pixels no interpolation touched), with Immerkær's residual ("Fast noise variance estimation",
CVIU 64(2), 1996) per 32 px tile. How depends on the decode (:func:`._signals.cached_noise_sigma`): a
file decoded at full scale gets a robust scale of the residual (the mean of its smaller half, as a
median absolute deviation; Donoho & Johnstone 1994) in its quietest unclipped tiles (the 10% quantile),
which sees noise correlated over neighbouring pixels; a camera-sized file, whose fine pixels average
2 x 2 or 4 x 4 source pixels and so whiten that noise, gets the texture-blind scale-invariance test
(Zoran & Weiss, ICCV 2009) at two octaves, and at least a quarter of the robust scale (the test cancels
noise together with texture soft at the pixel scale).

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


#: Long side, in pixels, of the view at which noise is judged (a photo seen whole on a screen).
VIEW_SIDE = 1024


def view_sigma(sigma_fine: float, source_long_side: int, fine_long_side: int) -> float:
    """The noise sigma measured on the fine image, as it shows in a view of ``VIEW_SIDE`` px.

    Area reduction by a factor k divides white noise's sigma by k, so the view sigma is the fine sigma
    times ``view / fine``, where the view is ``VIEW_SIDE`` or the source's own size when smaller (a small
    photo is seen at its own size, never enlarged). For a source larger than the fine image this assumes
    the noise is white at the source's resolution, which is what the fine image's unresampled pixels show.
    """
    return sigma_fine * min(VIEW_SIDE, source_long_side) / fine_long_side


def _score(m):
    return noise_factor(m["noise_sigma"])


@register("noise", column="noise_norm", version=_signals.NOISE_ESTIMATOR_VERSION, score=_score,
          description="absence of noise at a 1024 px view (robust residual scale at full scale, "
                      "scale-invariance test on reduced pixels)")
def measure(decoded):
    fine = float(_signals.cached_noise_sigma(decoded))
    return {"noise_sigma": view_sigma(fine, decoded.source_long_side, decoded.fine_long_side),
            "noise_sigma_fine": fine}

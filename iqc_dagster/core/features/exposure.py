"""Exposure from the luminance histogram (v1): mid-tones near the middle, little clipping.

Unlike the seed's "mean brightness", this does not reward blown-out photos: the score falls with the
distance of the median luminance from mid-grey and with the share of clipped highlights and shadows
(cf. the well-exposedness term of Mertens, Kautz & Van Reeth, "Exposure Fusion", PG 2007).
"""

from __future__ import annotations

import numpy as np

from iqc_dagster.core.features import register

LONG_SIDE = 512


def _score(m):
    mid = 1.0 - min(1.0, abs(m["median_luma"] - 0.5) / 0.45)
    clip_penalty = 3.0 * m["clipped_highlights"] + 2.0 * m["clipped_shadows"]
    return max(0.0, mid - clip_penalty)


@register("exposure", column="exposure_norm", version="hist1", score=_score,
          description="median luminance near mid-grey, penalised by clipped highlights and shadows")
def measure(decoded):
    g = decoded.gray_at(LONG_SIDE)
    hist = np.bincount(g.ravel(), minlength=256).astype(np.float64)
    n = hist.sum()
    cdf = np.cumsum(hist) / n
    return {
        "mean_luma": float((hist * np.arange(256)).sum() / n / 255.0),
        "median_luma": float(np.searchsorted(cdf, 0.5) / 255.0),
        "clipped_highlights": float(hist[250:].sum() / n),
        "clipped_shadows": float(hist[:6].sum() / n),
    }

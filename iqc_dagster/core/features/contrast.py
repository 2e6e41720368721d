"""Contrast: global RMS contrast of the luminance at 64 px (v2).

RMS contrast, the standard deviation of normalised luminance (Peli, "Contrast in complex images",
JOSA A 7(10), 1990), measured on the grey image reduced to a 64 px long side: that keeps the tonal
layout of the scene (what a flat, hazy photo lacks) and drops pixel-level noise and fine texture, which
otherwise inflate the figure (noise *raised* the seed's contrast) and belong to the sharpness and noise
scores.

Score: ``1 - exp(-c / 0.10)``: smooth and strictly increasing, 0.5 at c = 0.07 (a flat, misty scene),
0.86 at c = 0.20, 0.95 at c = 0.30 (strong tonal contrast); absolute, not relative to the album.
"""

from __future__ import annotations

import math

import numpy as np

from iqc_dagster.core.features import register

LONG_SIDE = 64
SCALE = 0.10


def _score(m):
    return 1.0 - math.exp(-max(0.0, m["rms_contrast"]) / SCALE)


@register("contrast", column="contrast_norm", version="rms2", score=_score,
          description="RMS contrast of luminance at 64 px (global tonal contrast)")
def measure(decoded):
    g = decoded.gray_at(LONG_SIDE).astype(np.float32) / 255.0
    return {"rms_contrast": float(g.std())}

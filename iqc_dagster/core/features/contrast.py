"""Contrast: RMS contrast, the standard deviation of normalised luminance (Peli, JOSA A 1990)."""

from __future__ import annotations

import numpy as np

from iqc_dagster.core.features import ramp, register

LONG_SIDE = 512


def _score(m):
    return ramp(m["rms_contrast"], 0.04, 0.24)


@register("contrast", column="contrast_norm", version="rms1", score=_score,
          description="RMS contrast of luminance")
def measure(decoded):
    g = decoded.gray_at(LONG_SIDE).astype(np.float32) / 255.0
    return {"rms_contrast": float(g.std())}

"""Sharpness: variance of the Laplacian on a size-normalised grey image (v1).

Reference: Pech-Pacheco et al., "Diatom autofocusing in brightfield microscopy: a comparative study",
ICPR 2000 (variance of the Laplacian as a focus measure). The image is first resized to a fixed long
side so the figure does not depend on the file's resolution.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from iqc_dagster.core.features import ramp, register

LONG_SIDE = 512


def _score(m):
    # log10 of the variance: ~1 (variance 10) is very soft, ~3 (variance 1000) is crisp at 512 px.
    return ramp(math.log10(m["laplacian_var"] + 1.0), 1.0, 3.0)


@register("sharpness", column="sharpness_norm", version="lapvar1", score=_score,
          description="variance of the Laplacian at 512 px (focus measure)")
def measure(decoded):
    g = decoded.gray_at(LONG_SIDE).astype(np.float32)
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=3)
    return {"laplacian_var": float(lap.var())}

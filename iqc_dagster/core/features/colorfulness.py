"""Colourfulness: Hasler & Süsstrunk's metric M (v1).

Hasler & Süsstrunk, "Measuring colourfulness in natural images", Proc. SPIE 5007 (Human Vision and
Electronic Imaging VIII), 2003: with ``rg = R - G`` and ``yb = (R + G) / 2 - B``,
``M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 * sqrt(mean_rg^2 + mean_yb^2)``, on 0..255 RGB. Their perceptual
anchors: 0 not colourful, 15 slightly, 33 moderately, 45 averagely, 59 quite, 82 highly, 109 extremely.

Measured on every fourth pixel (a statistic of the whole frame; sub-sampling changes it by < 1%).
Score: ``M / 109`` clipped (1 = "extremely colourful"). Informational: it is not part of the default
fusion (a black-and-white photo is not a worse photo); a weight can be given to it like any score.
"""

from __future__ import annotations

import numpy as np

from iqc_dagster.core.features import ramp, register

EXTREMELY_COLOURFUL = 109.0


def _score(m):
    return ramp(m["colorfulness_m"], 0.0, EXTREMELY_COLOURFUL)


@register("colorfulness", column="colorfulness_norm", version="hs1", score=_score,
          description="Hasler-Süsstrunk colourfulness M (informational, not fused by default)")
def measure(decoded):
    sub = decoded.rgb[::4, ::4].astype(np.float32)
    r, g, b = sub[..., 0], sub[..., 1], sub[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    m = float(np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
    return {"colorfulness_m": m}

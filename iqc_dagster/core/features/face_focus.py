"""Face sharpness: detail in the eye region of the softest prominent face, at native resolution.

Global sharpness (:mod:`.sharpness`) judges the best 10% of the frame: a sharp background behind a
soft face passes. This reads the eyes and brows of each prominent face (the part a photographer
checks at 100%), cut from ``decoded.fine`` (source pixels at 1/``reduction``, never interpolated
upwards) and area-reduced to at most :data:`~iqc_dagster.core.facemesh.FOCUS_SIDE` px across, so the
figure means the same for a large and a small face; a smaller face is measured as it is. The measure
is the LoG energy (sigma 1 px) minus what noise contributes, as ``log10(1 + energy)``: the photo's
measured noise through :func:`._signals.noise_gain`, or, when larger, the energy of the quietest 10% of
the region's 16 px tiles (the skin of lids and brows; ``eyelog2``), as global sharpness bounds its own
noise share. Noise correlated like a camera's carries more energy in this band than its measured sigma
says; without the floor a noisier frame of a burst read as the one with the sharper face.

Score: ``ramp(softest face's detail, 0.8, 1.7)``. On the benchmark's portraits (640 and 1024 px): in
focus 1.8-2.1, Gaussian blur σ 1.2 / 2.5 / 4.5 px (at 512 px) 1.2-1.6 / 0.55-0.9 / 0.2-0.35, the
uniformly soft copy 0.9-1.35, the bokeh copy whose sharp centre misses astronaut's face 0.1 (these with
``eyelog1``; the floor lowers them by 0.0-0.15). Camera noise now reads at most ~0.06 above the clean
face (``eyelog1``: up to 0.1-0.35 higher). NaN without a prominent face.
"""

from __future__ import annotations

import math

from iqc_dagster.core import facemesh
from iqc_dagster.core.features import _signals, ramp, register

DETAIL_RANGE = (0.8, 1.7)


def face_focus_score(detail: float) -> float:
    return ramp(detail, *DETAIL_RANGE)


def _score(m):
    return face_focus_score(m.get("face_detail_min", math.nan))


@register("face_focus", column="face_sharpness_norm",
          version=f"eyelog2-{facemesh.FACEMESH_VERSION}+{_signals.NOISE_ESTIMATOR_VERSION}", score=_score,
          description="noise-compensated LoG detail of the eye region of the softest prominent face, at "
                      "native resolution")
def measure(decoded):
    faces = [f for f in facemesh.analyze(decoded) if f.prominent and math.isfinite(f.focus_energy)]
    if not faces:
        return {"face_detail_min": math.nan, "face_detail_max": math.nan}
    sigma_n = _signals.cached_noise_sigma(decoded)
    details = []
    for f in faces:
        noise = sigma_n * sigma_n * _signals.noise_gain(round(f.focus_scale, 2), facemesh.FOCUS_SIGMA)
        if math.isfinite(f.focus_floor):  # correlated noise, which the sigma under-reads, fills the skin
            noise = max(noise, f.focus_floor)
        details.append(math.log10(1.0 + max(0.0, f.focus_energy - noise)))
    return {"face_detail_min": float(min(details)), "face_detail_max": float(max(details))}

"""Eyes open: the worst prominent face's eyes, from MediaPipe's face mesh and iris models.

Measured by :mod:`iqc_dagster.core.facemesh` (shared with ``faces`` and ``face_focus``, computed once
per photo). Per prominent face, the eye aspect ratio (EAR) of each eye from the iris model's eyelid
contour; a face is judged by its less open eye (a wink counts) and the photo by its worst prominent
face: with nine people in a group shot, one blink spoils it, and judging by the best face would call it
flawless. Background strangers (small or cut off at the frame's edge) are not judged.

Score: ``ramp(worst EAR, 0.14, 0.24)``: shut eyes (EAR about 0.10-0.13 on the test fixtures) 0, open
eyes (0.30-0.39) 1, a half blink in between. NaN when no prominent face has landmarks, so a photo
without faces is neither rewarded nor punished (fusion redistributes the weight for that photo).
"""

from __future__ import annotations

import math

from iqc_dagster.core import facemesh
from iqc_dagster.core.features import ramp, register

EAR_RANGE = (0.14, 0.24)  # eye aspect ratio: shut .. open
CLOSED_EAR = 0.17  # a face whose less open eye is below this counts as "eyes closed" (reasons)


def eyes_open_score(ear: float) -> float:
    return ramp(ear, *EAR_RANGE)


def _score(m):
    return eyes_open_score(m.get("eye_open_min", math.nan))


@register("eyes", column="eyes_open", version=f"ear1-{facemesh.FACEMESH_VERSION}", score=_score,
          description="eye openness (eye aspect ratio of MediaPipe's iris-model eyelids) of the worst "
                      "prominent face")
def measure(decoded):
    judged = [f for f in facemesh.analyze(decoded) if f.prominent and math.isfinite(f.eye_open)]
    worst = min((f.eye_open for f in judged), default=math.nan)
    return {
        "eye_open_min": float(worst),
        "eyes_judged_faces": float(len(judged)),
        "eyes_closed_faces": float(sum(f.eye_open < CLOSED_EAR for f in judged)),
    }

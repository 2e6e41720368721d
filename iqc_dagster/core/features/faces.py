"""Faces: MediaPipe's BlazeFace detector, confirmed by its face mesh (:mod:`iqc_dagster.core.facemesh`).

``face_present`` keeps the seed's meaning: 1 when the photo holds at least one face that matters to the
picture (a *prominent* face: at least 6% of the short side and half the largest face's size, not cut off
at the frame's edge; a stranger far in the background does not count), else 0. ``face_count`` counts
those faces; ``faces_detected`` every face the detector found, background ones included.

Until ``blaze1`` this was OpenCV's Haar cascade (Viola & Jones, CVPR 2001; ``haar2``: 256 px, step 1.2,
15-30 ms a photo), which also fired on blurred and blown-out copies of landscapes and a cat. BlazeFace
full-range runs in about 4 ms on a 192 px letterbox, and the face mesh's own presence output rejects
what the detector mistook for a face (docs/benchmarks.md, "Faces").
"""

from __future__ import annotations

from iqc_dagster.core import facemesh
from iqc_dagster.core.features import register


def _score(m):
    return 1.0 if m["face_count"] > 0 else 0.0


@register("faces", column="face_present", version=f"blaze1-{facemesh.FACEMESH_VERSION}", score=_score,
          description="a prominent face found by MediaPipe's BlazeFace and confirmed by its face mesh")
def measure(decoded):
    faces = facemesh.analyze(decoded)
    prominent = [f for f in faces if f.prominent]
    h, w = decoded.rgb.shape[:2]
    largest = max((f.side * f.side for f in prominent), default=0.0) / float(h * w)
    return {"face_count": float(len(prominent)), "faces_detected": float(len(faces)),
            "largest_face_frac": float(min(1.0, largest)),
            "face_confidence": float(max((f.score for f in prominent), default=0.0))}

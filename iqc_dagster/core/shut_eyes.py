"""Test and benchmark fixtures for the eye and face scores: real portraits with the eyes painted shut.

Photos of people with their eyes closed do not ship in any package, so they are made: the face mesh
(:mod:`iqc_dagster.core.facemesh`) finds each eye's contour, and the eye is covered by a lid of the
subject's own skin colour (the median of a cheek patch just below the eye, a shade darker), feathered at
its edge, with a dark lash line sagging from corner to corner.

What these fixtures can show: that the eye score separates open from shut eyes on real faces at every
size, under the benchmark's distortions, and (with the tests' group photos) that one shut face among
several lowers a group photo.
What they cannot: a painted lid has no crease, fold or lash texture, and it was placed with the same
mesh that later reads it, so the accuracy on real blinks, half-closed or squinting eyes, sunglasses and
profiles is not measured by them (no such photos ship in a package).

No Dagster import; used by the tests and by ``iqc benchmark`` (the ``*_eyes_shut`` references).
"""

from __future__ import annotations


import cv2
import numpy as np

from iqc_dagster.core import facemesh
from iqc_dagster.core.imaging import Decoded

#: Eye contour of the face mesh (16 points, corner to corner along the lower lid and back).
CONTOUR = {"right": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
           "left": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)}


def _faces(rgb: np.ndarray) -> list[facemesh.Face]:
    d = Decoded(rgb=np.ascontiguousarray(rgb), source_width=rgb.shape[1], source_height=rgb.shape[0])
    return [f for f in facemesh.analyze(d) if f.landmarks is not None]


def close_eyes(rgb: np.ndarray, which: str = "all") -> np.ndarray:
    """A copy of ``rgb`` with the eyes of its faces painted shut (``which``: "all" faces or the
    "largest" one). Raises ``ValueError`` when no face with landmarks is found."""
    faces = _faces(rgb)
    if not faces:
        raise ValueError("no face found to close the eyes of")
    if which == "largest":
        faces = [max(faces, key=lambda f: f.side)]
    out = rgb.astype(np.float32).copy()
    for face in faces:
        for idx in CONTOUR.values():
            out = _paint_lid(out, rgb, face.landmarks, idx)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _paint_lid(out: np.ndarray, rgb: np.ndarray, lm: np.ndarray, idx) -> np.ndarray:
    poly = lm[list(idx)]
    c0, c1 = lm[idx[0]], lm[idx[8]]
    width = float(np.linalg.norm(c1 - c0))
    if width < 3:
        return out
    centre = poly.mean(0)
    big = centre + (poly - centre) * np.array([1.25, 1.9])  # covers the lashes and the lid margin
    mask = np.zeros(rgb.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.round(big).astype(np.int32)], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, width * 0.06))
    h, w = rgb.shape[:2]
    py = int(np.clip(centre[1] + 0.55 * width, 0, h - 2))
    px0, px1 = int(np.clip(centre[0] - 0.3 * width, 0, w - 2)), int(np.clip(centre[0] + 0.3 * width, 1, w - 1))
    patch = rgb[py:py + max(2, int(0.25 * width)), px0:max(px0 + 1, px1)].reshape(-1, 3)
    skin = np.median(patch, 0) if patch.size else np.array([180.0, 140.0, 120.0])
    lid = np.empty_like(out)
    lid[:] = skin * 0.92  # lids are a shade darker than the cheek
    out = out * (1 - mask[..., None]) + lid * mask[..., None]
    t = np.linspace(0, 1, 24)
    arc = c0[None] * (1 - t[:, None]) + c1[None] * t[:, None]
    arc[:, 1] += np.sin(np.pi * t) * 0.12 * width  # the lash line sags a little
    cv2.polylines(out, [np.round(arc).astype(np.int32)], False, (skin * 0.35).tolist(),
                  max(1, int(round(width * 0.05))), cv2.LINE_AA)
    return out

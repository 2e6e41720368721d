"""Faces: OpenCV's Haar cascade (Viola & Jones, CVPR 2001) on a downscaled grey image.

``face_present`` is 1 when at least one frontal face of at least ~4% of the short side is found.
"""

from __future__ import annotations

import threading

import cv2

from iqc_dagster.core.features import register

LONG_SIDE = 640
_local = threading.local()


def _cascade() -> cv2.CascadeClassifier:
    c = getattr(_local, "cascade", None)
    if c is None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        c = cv2.CascadeClassifier(path)
        if c.empty():
            raise RuntimeError(f"OpenCV face cascade missing at {path} (opencv-python-headless<5 ships it)")
        _local.cascade = c
    return c


def _score(m):
    return 1.0 if m["face_count"] > 0 else 0.0


@register("faces", column="face_present", version="haar1", score=_score,
          description="a frontal face found by OpenCV's Haar cascade")
def measure(decoded):
    g = decoded.gray_at(LONG_SIDE)
    g = cv2.equalizeHist(g)
    short = min(g.shape)
    min_size = max(24, int(short * 0.04))
    faces = _cascade().detectMultiScale(g, scaleFactor=1.1, minNeighbors=6, minSize=(min_size, min_size))
    count = len(faces)
    largest = max((w * h for (_, _, w, h) in faces), default=0) / float(g.shape[0] * g.shape[1])
    return {"face_count": float(count), "largest_face_frac": float(largest)}

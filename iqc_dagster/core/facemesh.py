"""Faces with landmarks: MediaPipe's BlazeFace detector and face mesh, run offline with LiteRT.

Pure core (no Dagster import). The models are MediaPipe's (Apache-2.0), shipped inside this package in
``iqc_dagster/models`` (see the NOTICE there); nothing is ever downloaded. They run on the LiteRT
interpreter (``ai-edge-litert``: Google's TensorFlow Lite runtime without TensorFlow, numpy 2).

Per photo, once (cached on the :class:`~iqc_dagster.core.imaging.Decoded`, shared by every feature
that asks):

1. **Detection**: BlazeFace full-range (sparse, 192 x 192 input; Bazarevsky et al., CVPR Workshops
   2019) on the view image letterboxed to a square. It finds faces from about 3% of the frame up;
   boxes, a confidence and six key points (eyes, nose, mouth, ears) per face.
2. **Prominence**: a face counts for the photo when it is a subject, not a stranger in the background:
   its box is at least :data:`PROMINENT_REL` of the largest face's and at least
   :data:`PROMINENT_MIN` of the frame's short side, and its centre is not in the outer
   :data:`EDGE_MARGIN` of the frame.
3. **Landmarks**, for prominent faces only: the 468-point face mesh (Kartynnik et al., "Real-time
   facial surface geometry from monocular video on mobile GPUs", CVPR Workshops 2019) on a square crop
   of 1.5x the box, rotated so the eyes are level, exactly as MediaPipe's face-mesh graph does. The
   mesh's own face-presence output confirms the detection.
4. **Eye openness** per eye: the eye aspect ratio (Soukupová & Čech, "Real-time eye blink detection
   using facial landmarks", CVWW 2016) of the mesh's eyelid points: the mean of three lid-to-lid
   distances over the corner-to-corner width. Open eyes read about 0.25-0.35, shut ones under 0.12.
5. **Face sharpness**: Laplacian-of-Gaussian detail of the eye region, cut from ``decoded.fine`` (the
   pixels at 1/``reduction`` of the source, never interpolated upwards) and area-reduced to at most
   :data:`FOCUS_SIDE` px across the eyes (a fixed size relative to the face, so a large and a small
   face in focus read alike; a smaller face is measured as it is, never enlarged).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MODEL_DIR = Path(__file__).resolve().parent.parent / "models"
DETECTOR_MODEL = "face_detection_full_range_sparse.tflite"
MESH_MODEL = "face_landmark.tflite"
IRIS_MODEL = "iris_landmark.tflite"
#: Changes whenever anything below changes what is measured: part of the features' versions.
FACEMESH_VERSION = "bf1m1"

DET_SIZE = 192
MIN_SCORE = 0.6  # detection confidence kept (MediaPipe's default is 0.5)
NMS_IOU = 0.3
MESH_SIZE = 192
ROI_SCALE = 1.5
MESH_MIN_PRESENCE = 0.5  # sigmoid of the mesh's face flag

PROMINENT_REL = 0.5  # box side >= half the largest face's
PROMINENT_MIN = 0.06  # box side >= 6% of the frame's short side
EDGE_MARGIN = 0.03  # a face centred in the outer 3% of the frame (cut off) is not a subject
MAX_MESH_FACES = 12  # landmarks for at most this many prominent faces (the largest), bounding the cost

#: Eye region of the mesh for face focus: both eyes and brows.
FOCUS_POINTS = (33, 133, 263, 362, 70, 300, 105, 334, 145, 374, 159, 386)
FOCUS_SIDE = 160  # px across the eye region, at most (area reduction from ``fine``)
FOCUS_SIGMA = 1.0
FOCUS_TILE, FOCUS_FLOOR_SHARE = 16, 0.10  # px tiles of the eye region; share of them, the quietest

_local = threading.local()


class ModelMissing(RuntimeError):
    """A model file is not where the package ships it."""


def model_path(name: str) -> Path:
    p = MODEL_DIR / name
    if not p.is_file():
        raise ModelMissing(f"face model {name} missing from {MODEL_DIR} (it ships inside the iqc package)")
    return p


_create_lock = threading.Lock()
#: What LiteRT's C++ logger prints to stderr when an interpreter is made; kept off the user's terminal.
_RUNTIME_CHATTER = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


def _interpreter(name: str):
    """One LiteRT interpreter per model and thread (interpreters are not thread-safe), on XNNPACK
    (7x faster than the reference kernels here), one thread each: photos are already spread over the
    cores by the analysis pool."""
    cache = getattr(_local, "interpreters", None)
    if cache is None:
        cache = _local.interpreters = {}
    it = cache.get(name)
    if it is None:
        from ai_edge_litert.interpreter import Interpreter

        path = str(model_path(name))
        with _create_lock, _quiet_stderr():
            it = Interpreter(model_path=path, num_threads=1)
            it.allocate_tensors()
        cache[name] = it
    return it


@contextlib.contextmanager
def _quiet_stderr():
    """Hold back what native code writes to file descriptor 2 while an interpreter is made (LiteRT's
    logger announces each XNNPACK delegate with an INFO line, which no setting turns off), then pass
    on anything else that was written meanwhile: nothing is lost, only LiteRT's INFO line dropped."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (captured, or none): nothing to hide
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            rest = "".join(line for line in text.splitlines(keepends=True)
                           if line.strip() not in _RUNTIME_CHATTER)
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


def _run(name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    it = _interpreter(name)
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return {o["name"]: it.get_tensor(o["index"]) for o in it.get_output_details()}


def _anchors(size: int = DET_SIZE, stride: int = 4) -> np.ndarray:
    n = size // stride
    c = (np.arange(n, dtype=np.float32) + 0.5) / n
    xx, yy = np.meshgrid(c, c)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


_ANCHORS = _anchors()


@dataclass(eq=False)  # compared by identity (it holds arrays)
class Face:
    """One detected face, in view-image pixels (``decoded.rgb``)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float  # detection confidence
    keypoints: np.ndarray  # 6 x 2: the detector's eyes, nose, mouth, ears
    prominent: bool = False
    presence: float = math.nan  # the mesh's face flag (sigmoid); NaN without landmarks
    landmarks: np.ndarray | None = None  # 468 x 2 (view-image pixels), prominent faces only
    ear_right: float = math.nan
    ear_left: float = math.nan
    focus_energy: float = math.nan  # mean squared LoG response of the eye region (noise included)
    focus_scale: float = math.nan  # area-reduction factor from ``fine`` where it was measured (<= 1)
    #: energy of the quietest :data:`FOCUS_FLOOR_SHARE` of the region's tiles (skin of lids and brows):
    #: what noise alone puts there (NaN for a region of fewer than 10 tiles)
    focus_floor: float = math.nan

    @property
    def side(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    @property
    def eye_open(self) -> float:
        """The less open eye's aspect ratio (a wink or a half blink counts)."""
        vals = [v for v in (self.ear_right, self.ear_left) if math.isfinite(v)]
        return min(vals) if vals else math.nan


def detect(rgb: np.ndarray) -> list[Face]:
    """BlazeFace full-range faces of an RGB uint8 image (boxes in its pixels)."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    scale = DET_SIZE / side
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((DET_SIZE, DET_SIZE, 3), np.uint8)
    ox, oy = (DET_SIZE - nw) // 2, (DET_SIZE - nh) // 2
    canvas[oy:oy + nh, ox:ox + nw] = small
    x = (canvas.astype(np.float32) / 127.5 - 1.0)[None]
    out = _run(DETECTOR_MODEL, x)
    reg = next(v for v in out.values() if v.shape[-1] == 16)[0]  # boxes and key points per anchor
    cls = next(v for v in out.values() if v.shape[-1] == 1)[0, :, 0]  # face logit per anchor
    scores = 1.0 / (1.0 + np.exp(-np.clip(cls, -80, 80)))
    keep = np.flatnonzero(scores >= MIN_SCORE)
    if keep.size == 0:
        return []
    r = reg[keep].reshape(-1, 8, 2) / DET_SIZE
    a = _ANCHORS[keep][:, None, :]
    centre = r[:, 0] + a[:, 0]
    half = r[:, 1] / 2
    pts = r[:, 2:] + a  # 6 keypoints
    boxes = np.concatenate([centre - half, centre + half], axis=1)  # normalised on the canvas
    faces = _weighted_nms(boxes, pts, scores[keep])
    out_faces = []
    # canvas-normalised -> image pixels
    for b, p, s in faces:
        bx = (b.reshape(2, 2) * DET_SIZE - (ox, oy)) / scale
        kp = (p * DET_SIZE - (ox, oy)) / scale
        x0, y0 = np.clip(bx[0], 0, (w, h))
        x1, y1 = np.clip(bx[1], 0, (w, h))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        out_faces.append(Face(box=(float(x0), float(y0), float(x1), float(y1)), score=float(s), keypoints=kp))
    return out_faces


def _iou(b: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(b[0], others[:, 0])
    y0 = np.maximum(b[1], others[:, 1])
    x1 = np.minimum(b[2], others[:, 2])
    y1 = np.minimum(b[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: (z[..., 2] - z[..., 0]) * (z[..., 3] - z[..., 1])  # noqa: E731
    return inter / np.maximum(area(b) + area(others) - inter, 1e-9)


def _weighted_nms(boxes, pts, scores):
    """MediaPipe's weighted non-maximum suppression: overlapping boxes are averaged by score."""
    order = np.argsort(-scores)
    boxes, pts, scores = boxes[order], pts[order], scores[order]
    remaining = np.arange(len(scores))
    out = []
    while remaining.size:
        i = remaining[0]
        ov = _iou(boxes[i], boxes[remaining])
        group = remaining[ov > NMS_IOU]
        wts = scores[group][:, None]
        b = (boxes[group] * wts).sum(0) / wts.sum()
        p = (pts[group] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((b, p, float(scores[i])))
        remaining = remaining[ov <= NMS_IOU]
    return out


def mark_prominent(faces: list[Face], width: int, height: int) -> None:
    if not faces:
        return
    largest = max(f.side for f in faces)
    short = min(width, height)
    for f in faces:
        cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
        inside = (EDGE_MARGIN * width <= cx <= (1 - EDGE_MARGIN) * width
                  and EDGE_MARGIN * height <= cy <= (1 - EDGE_MARGIN) * height)
        f.prominent = bool(f.side >= PROMINENT_REL * largest and f.side >= PROMINENT_MIN * short and inside)


def _roi_transform(face: Face, src_scale: float):
    """Affine map from the source image (view pixels x ``src_scale``) to the MESH_SIZE input crop."""
    (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]  # subject's right eye (image left), left eye
    angle = math.atan2(ly - ry, lx - rx)  # tilt of the eye line
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    side = ROI_SCALE * face.side
    k = MESH_SIZE / (side * src_scale)
    c, s = math.cos(-angle) * k, math.sin(-angle) * k
    # x' = R(-angle) * k * (x*src_scale - centre*src_scale) + MESH_SIZE/2
    m = np.array([[c, -s, 0.0], [s, c, 0.0]], np.float64)
    ctr = np.array([cx, cy]) * src_scale
    m[:, 2] = MESH_SIZE / 2 - m[:, :2] @ ctr
    return m


def _sample(rgb: np.ndarray, fine: np.ndarray, m_view: np.ndarray, size: int,
            border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """The ``size`` x ``size`` model input that the affine map ``m_view`` (view-image pixels -> input
    pixels) describes, sampled from the image that holds enough pixels: ``fine`` when the region covers
    fewer view pixels than the input has, else the view image. Only the region is cut out and, when it
    is more than twice the input's size, area-reduced first, so the warp never aliases."""
    k = float(np.hypot(m_view[0, 0], m_view[0, 1]))  # input pixels per view pixel
    ratio = fine.shape[1] / rgb.shape[1]
    src, s = (fine, ratio) if k > 1.0 and ratio > 1.0 else (rgb, 1.0)
    inv = np.linalg.inv(np.vstack([m_view, [0.0, 0.0, 1.0]]))
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float) @ inv.T
    h, w = src.shape[:2]
    x0, y0 = np.floor(corners[:, :2].min(0) * s - 2).astype(int)
    x1, y1 = np.ceil(corners[:, :2].max(0) * s + 2).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((size, size, 3), np.uint8)
    sub = src[y0:y1, x0:x1]
    f = 1.0
    side_src = size / k * s
    if side_src > 2 * size:
        f = 2 * size / side_src
        sub = cv2.resize(sub, (max(1, round(sub.shape[1] * f)), max(1, round(sub.shape[0] * f))),
                         interpolation=cv2.INTER_AREA)
    # view = (sub / f + (x0, y0)) / s  =>  input = A view + b = A / (s f) sub + A (x0, y0) / s + b
    m = m_view.copy()
    m[:, 2] = m_view[:, :2] @ (np.array([x0, y0], float) / s) + m_view[:, 2]
    m[:, :2] = m_view[:, :2] / (s * f)
    return cv2.warpAffine(sub, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


def landmarks(face: Face, rgb: np.ndarray, fine: np.ndarray) -> None:
    """Run the face mesh on one face; fills ``presence`` and ``landmarks``."""
    m_view = _roi_transform(face, 1.0)  # view pixels -> crop
    crop = _sample(rgb, fine, m_view, MESH_SIZE)
    out = _run(MESH_MODEL, (crop.astype(np.float32) / 255.0)[None])
    flag = next(v for v in out.values() if v.size == 1)
    pts = next(v for v in out.values() if v.size == 1404).reshape(468, 3)[:, :2]
    face.presence = float(1.0 / (1.0 + math.exp(-float(np.clip(flag.ravel()[0], -80, 80)))))
    inv = np.linalg.inv(np.vstack([m_view, [0.0, 0.0, 1.0]]))
    face.landmarks = (np.hstack([pts, np.ones((468, 1))]) @ inv.T)[:, :2]  # view-image pixels


IRIS_SIZE = 64
IRIS_ROI_SCALE = 2.3
#: Mesh corners of each eye, in image order (left to right); the second eye is mirrored for the model.
IRIS_EYES = {"right": (33, 133, False), "left": (362, 263, True)}
#: Eye contour of the iris model: 0..8 the lower lid from corner to corner, 9..15 the upper lid.
IRIS_SPEC = {"corners": (0, 8), "pairs": ((11, 3), (12, 4), (13, 5))}


def eyelids(face: Face, rgb: np.ndarray, fine: np.ndarray) -> None:
    """Refine both eyes with MediaPipe's iris model (71 eye-contour points on a 64 px eye crop) and
    set the eye aspect ratios from its eyelids: the face mesh alone hardly closes on shut eyes."""
    for eye, (ia, ib, mirror) in IRIS_EYES.items():
        a, b = face.landmarks[ia], face.landmarks[ib]
        width = float(np.linalg.norm(b - a))
        if width < 2:  # an eye under 2 px across cannot be judged
            setattr(face, f"ear_{eye}", math.nan)
            continue
        side = IRIS_ROI_SCALE * width
        angle = math.atan2(b[1] - a[1], b[0] - a[0])
        k = IRIS_SIZE / side
        c, sn = math.cos(-angle) * k, math.sin(-angle) * k
        m = np.array([[c, -sn, 0.0], [sn, c, 0.0]])
        if mirror:
            m[0] *= -1
        m[:, 2] = IRIS_SIZE / 2 - m[:, :2] @ ((a + b) / 2)
        crop = _sample(rgb, fine, m, IRIS_SIZE, cv2.BORDER_REPLICATE)
        out = _run(IRIS_MODEL, (crop.astype(np.float32) / 255.0)[None])
        contour = next(v for v in out.values() if v.size == 213).reshape(71, 3)[:, :2]
        setattr(face, f"ear_{eye}", eye_aspect_ratio(contour, IRIS_SPEC))


def eye_aspect_ratio(pts: np.ndarray, spec) -> float:
    a, b = spec["corners"]
    width = float(np.linalg.norm(pts[a] - pts[b]))
    if width <= 1e-6:
        return math.nan
    lids = [float(np.linalg.norm(pts[u] - pts[d])) for u, d in spec["pairs"]]
    return float(np.mean(lids) / width)


def face_focus(face: Face, decoded) -> None:
    """LoG detail of the eye region, from ``decoded.fine`` (never enlarged)."""
    if face.landmarks is None:
        return
    ratio = decoded.fine.shape[1] / decoded.rgb.shape[1]
    p = face.landmarks[list(FOCUS_POINTS)] * ratio
    x0, y0 = p.min(0)
    x1, y1 = p.max(0)
    pad = 0.15 * (x1 - x0)
    h, w = decoded.fine.shape[:2]
    x0, y0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
    x1, y1 = int(min(w, x1 + pad)), int(min(h, y1 + pad))
    if x1 - x0 < 8 or y1 - y0 < 4:
        return
    g = cv2.cvtColor(decoded.fine[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    width, f = x1 - x0, 1.0
    if width > FOCUS_SIDE:
        f = FOCUS_SIDE / width
        g = cv2.resize(g, (FOCUS_SIDE, max(2, round((y1 - y0) * f))), interpolation=cv2.INTER_AREA)
    from iqc_dagster.core.features._signals import log_filter, quiet_floor, tile_means  # (import cycle)

    lap = log_filter(g, FOCUS_SIGMA)[2:-2, 2:-2]
    energy = lap * lap
    face.focus_energy = float(np.mean(energy))
    face.focus_scale = float(f)
    face.focus_floor = quiet_floor(tile_means(energy, FOCUS_TILE), FOCUS_FLOOR_SHARE)


def analyze(decoded) -> list[Face]:
    """Every face of the photo, prominent ones with landmarks, eye openness and focus; once per photo."""
    key = ("facemesh", FACEMESH_VERSION)
    cache = decoded._cache
    if key not in cache:
        rgb = decoded.rgb
        h, w = rgb.shape[:2]
        faces = detect(rgb)
        while True:  # a detection the mesh rejects is no face: judge prominence again without it
            mark_prominent(faces, w, h)
            todo = [f for f in sorted(faces, key=lambda f: -f.side) if f.prominent][:MAX_MESH_FACES]
            todo = [f for f in todo if f.landmarks is None]
            if not todo:
                break
            for f in todo:
                landmarks(f, rgb, decoded.fine)
                if f.presence < MESH_MIN_PRESENCE:
                    continue
                eyelids(f, rgb, decoded.fine)
                face_focus(f, decoded)
            faces = [f for f in faces if not f.presence < MESH_MIN_PRESENCE]  # NaN (no mesh run): kept
        for i, f in enumerate(sorted((f for f in faces if f.prominent), key=lambda f: -f.side)):
            if i >= MAX_MESH_FACES:
                f.prominent = False  # beyond the cap: not judged
        cache[key] = faces
    return cache[key]

"""Deterministic photo degradations (blur, noise, JPEG, exposure, contrast, bokeh) on uint8 RGB arrays.

Used to build the sample albums and the ranking-quality benchmark: each function takes an H x W x 3
uint8 image and returns a new one; ``level`` 1..3 goes from mild to harsh.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

LEVELS = (1, 2, 3)
#: Distortions that take a ``seed`` (random noise patterns).
SEEDED = frozenset({"gaussian_noise", "camera_noise"})


def _clip(a) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _scale(img: np.ndarray) -> float:
    """Degradation strength scales with the image so a level means the same at any resolution."""
    return max(img.shape[:2]) / 512.0


def gaussian_blur(img: np.ndarray, level: int = 2) -> np.ndarray:
    sigma = {1: 1.2, 2: 2.5, 3: 4.5}[level] * _scale(img)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma)


def motion_blur(img: np.ndarray, level: int = 2, angle_deg: float = 30.0) -> np.ndarray:
    length = max(3, int(round({1: 7, 2: 13, 3: 23}[level] * _scale(img))))
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle_deg, 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    k /= k.sum()
    return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT)


def _normal(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32)


def gaussian_noise(img: np.ndarray, level: int = 2, seed: int = 0) -> np.ndarray:
    """White Gaussian noise of the same sigma (8, 16, 30 grey levels) on every pixel and channel."""
    sigma = {1: 8.0, 2: 16.0, 3: 30.0}[level]
    n = _normal(np.random.default_rng(seed), img.shape)
    n *= sigma
    n += img
    return _clip(n)


def _correlated(rng: np.random.Generator, shape, sigma_px: float) -> np.ndarray:
    """Unit-variance noise, spatially correlated by a Gaussian of ``sigma_px`` pixels."""
    n = _normal(rng, shape)
    if sigma_px > 0:
        n = cv2.GaussianBlur(n, (0, 0), sigmaX=sigma_px)
        n /= max(1e-6, float(n.std()))
    return n


#: Camera-like noise levels: variance ``gain * signal + read`` (8-bit levels), as ISO ~800 / 3200 / 12800
#: on a small sensor after the camera's processing. Sigma at mid-grey: 5.8, 10.4, 18.3 grey levels.
CAMERA_NOISE = {1: (0.25, 2.0), 2: (0.8, 6.0), 3: (2.5, 16.0)}
LUMA_CORRELATION_PX = 0.7  # demosaicing and mild noise reduction correlate neighbouring pixels
CHROMA_CORRELATION_PX = 1.5  # chroma is subsampled and smoothed more: coarser colour blotches
CHROMA_SHARE = 0.6  # chroma noise amplitude relative to the luma noise


def camera_noise(img: np.ndarray, level: int = 2, seed: int = 0) -> np.ndarray:
    """Signal-dependent (Poisson-Gaussian) luma and chroma noise, spatially correlated as demosaicing and
    in-camera noise reduction leave it (Foi et al., "Practical Poissonian-Gaussian noise modeling and
    fitting for single-image raw-data", IEEE TIP 17(10), 2008, for the variance model)."""
    gain, read = CAMERA_NOISE[level]
    rng = np.random.default_rng(seed)
    x = img.astype(np.float32)
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
    sd = np.sqrt(gain * luma + read)
    h, w = img.shape[:2]
    out = x
    out += (sd * _correlated(rng, (h, w), LUMA_CORRELATION_PX))[..., None]
    for c, sign in ((0, 1.0), (2, -1.0)):  # red-green and blue-yellow blotches
        out[..., c] += sign * CHROMA_SHARE * sd * _correlated(rng, (h, w), CHROMA_CORRELATION_PX)
    return _clip(out)


#: JPEG quality of each level: a heavy web re-compression, a messaging app at its worst, broken.
JPEG_QUALITY = {1: 40, 2: 20, 3: 10}


def reencode(img: np.ndarray, quality: int) -> np.ndarray:
    """``img`` saved as a JPEG at ``quality`` and decoded again."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def jpeg(img: np.ndarray, level: int = 2) -> np.ndarray:
    return reencode(img, JPEG_QUALITY[level])


def _gamma_gain(img: np.ndarray, gain: float, gamma: float = 1.0) -> np.ndarray:
    lin = (img.astype(np.float32) / 255.0) ** 2.2
    out = np.clip(lin * gain, 0, 1) ** (1 / 2.2)
    return _clip(out ** gamma * 255.0)


def underexpose(img: np.ndarray, level: int = 2) -> np.ndarray:
    """Linear-light gain below 1 (−1, −2, −3.3 EV)."""
    return _gamma_gain(img, {1: 0.5, 2: 0.25, 3: 0.1}[level])


def overexpose(img: np.ndarray, level: int = 2) -> np.ndarray:
    """Linear-light gain above 1 (+1, +1.6, +2.3 EV), clipping the highlights."""
    return _gamma_gain(img, {1: 2.0, 2: 3.0, 3: 5.0}[level])


def reduce_contrast(img: np.ndarray, level: int = 2) -> np.ndarray:
    """Blend towards mid-grey (a hazy, flat photo)."""
    keep = {1: 0.6, 2: 0.4, 3: 0.2}[level]
    return _clip(img.astype(np.float32) * keep + 128.0 * (1 - keep))


def bokeh(img: np.ndarray, subject_frac: float = 0.45, sigma: float = 6.0) -> np.ndarray:
    """A sharp centre subject on a strongly blurred background (shallow depth of field)."""
    h, w = img.shape[:2]
    bg = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma * _scale(img))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - w / 2) / (w * subject_frac / 2)) ** 2 + ((yy - h / 2) / (h * subject_frac / 2)) ** 2)
    mask = np.clip((1.3 - r) / 0.3, 0, 1)[..., None]
    return _clip(img * mask + bg * (1 - mask))


def soften(img: np.ndarray, sigma: float = 1.6) -> np.ndarray:
    """A uniformly soft copy (the whole frame slightly out of focus)."""
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma * _scale(img))


def crop_resize(img: np.ndarray, frac: float = 0.92, size: float = 0.8) -> np.ndarray:
    """A near-duplicate: slightly cropped, resized copy."""
    h, w = img.shape[:2]
    dy, dx = int(h * (1 - frac) / 2), int(w * (1 - frac) / 2)
    c = img[dy:h - dy, dx:w - dx]
    return cv2.resize(c, (int(c.shape[1] * size), int(c.shape[0] * size)), interpolation=cv2.INTER_AREA)


DISTORTIONS = {
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "gaussian_noise": gaussian_noise,
    "camera_noise": camera_noise,
    "jpeg": jpeg,
    "underexpose": underexpose,
    "overexpose": overexpose,
    "reduce_contrast": reduce_contrast,
}

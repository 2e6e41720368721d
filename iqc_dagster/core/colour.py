"""Embedded ICC profiles → sRGB, in the one decode (LittleCMS through Pillow's ImageCms).

Every score is calibrated on sRGB pixels. A Display P3 photo (every recent iPhone) or an Adobe RGB one
stores the same colours as smaller numbers; read as if they were sRGB, it looks duller (colourfulness
125-128 instead of 175) and its tones shift. :func:`to_srgb` converts such pixels to sRGB.

Cheap by construction: a photo without a profile costs one dictionary look-up; a transform is built
once per distinct profile (and image mode) and cached; a profile that is sRGB already (most cameras and
phones in sRGB mode embed one) is recognised once, on a grid of test colours, and then skipped. A
profile that cannot be parsed or applied is ignored: the photo is still scored, as before.

No Dagster import here.
"""

from __future__ import annotations

import hashlib
import io
import threading

import numpy as np
from PIL import Image, ImageCms

#: (profile digest, image mode) -> transform, or None when the profile is sRGB already or unusable.
_CACHE: dict[tuple[bytes, str], ImageCms.ImageCmsTransform | None] = {}
_LOCK = threading.Lock()
_MAX_CACHE = 256
#: Image modes whose profile colour space we can convert, and the mode LittleCMS writes.
_MODES = {"RGB": ("RGB ", "RGB"), "RGBA": ("RGB ", "RGBA"), "CMYK": ("CMYK", "RGB"), "L": ("GRAY", "RGB")}
_SRGB = None


def _srgb_profile():
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.createProfile("sRGB")
    return _SRGB


def _test_image(mode: str) -> Image.Image:
    v = np.linspace(0, 255, 8).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(v, v, v, indexing="ij"), axis=-1).reshape(16, 32, 3)
    im = Image.fromarray(np.ascontiguousarray(grid), "RGB")
    return im.convert("RGBA") if mode == "RGBA" else im


def _build(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    space, out_mode = _MODES[mode]
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if src.profile.xcolor_space != space:  # e.g. an RGB profile on a grey image: not for these pixels
            return None
        transform = ImageCms.buildTransform(src, _srgb_profile(), mode, out_mode,
                                            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                                            flags=ImageCms.Flags.NONE)  # lcms2 copies its pixel cache per call: thread-safe
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    if mode in ("RGB", "RGBA"):
        probe = _test_image(mode)
        try:
            out = ImageCms.applyTransform(probe, transform)
        except (ImageCms.PyCMSError, ValueError):
            return None
        diff = np.abs(np.asarray(out, np.int16)[..., :3] - np.asarray(probe, np.int16)[..., :3])
        if int(diff.max()) <= 2:
            return None  # sRGB already (or as good as): converting would only cost time
    return transform


def transform_for(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The cached transform from ``icc`` (for pixels of ``mode``) to sRGB; None when none is needed or
    possible."""
    key = (hashlib.blake2b(icc, digest_size=16).digest(), mode)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    transform = _build(icc, mode)
    with _LOCK:
        if len(_CACHE) >= _MAX_CACHE:
            _CACHE.clear()
        _CACHE[key] = transform
    return transform


def to_srgb(im: Image.Image) -> Image.Image | None:
    """``im`` converted to sRGB (RGB, or RGBA keeping its alpha) when it carries an ICC profile that is
    not sRGB; None when there is nothing to do (no profile, sRGB already, a mode or profile we cannot
    convert). The image must be loaded."""
    icc = im.info.get("icc_profile")
    if not icc or not isinstance(icc, (bytes, bytearray)) or im.mode not in _MODES:
        return None
    transform = transform_for(bytes(icc), im.mode)
    if transform is None:
        return None
    try:
        out = ImageCms.applyTransform(im, transform)
    except (ImageCms.PyCMSError, ValueError, OSError):
        return None
    if out is None:
        return None
    out.info.pop("icc_profile", None)
    return out

"""Decode a photo once, upright and at a known reduced scale, and describe files without decoding them.

Everything that looks at pixels (technical features, face detection, CLIP preprocessing) receives the
same :class:`Decoded` object, so each photo is read from disk and decoded exactly once per run. It holds
two images, and nothing in either is ever interpolated *upwards*:

* ``fine``: the photo reduced by an integer factor ``reduction`` (1, 2 or 4) and nothing else. JPEGs are
  decoded in *draft mode*: libjpeg's DCT scaling returns 1/2 or 1/4 of the size directly, several times
  faster than a full decode; other formats are decoded in full and box-averaged over ``reduction`` x
  ``reduction`` pixels. Both keep pixel statistics intact: white noise stays white (its sigma divided by
  the factor) and the JPEG block grid stays a grid of ``8 / reduction`` pixels. The factor is the
  largest that keeps the long side at least ``FINE_MIN_SIDE``. Noise and JPEG blocking are read here.
* ``rgb``: the view image, ``fine`` area-reduced to a long side of at most ``MAX_SIDE`` (never enlarged:
  a 800 px photo stays 800 px). Exposure, colour, faces, CLIP and the perceptual hashes read it, and
  :meth:`Decoded.gray_at` makes the fixed viewing sizes that detail is compared at (area reduction of
  ``fine``, again never enlarged).

EXIF orientation is applied to both, so a photo taken in portrait is scored upright.

No Dagster import here: this module is plain Python and unit-tested directly.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import xxhash
from PIL import Image, UnidentifiedImageError

#: Long side, in pixels, of the view image at most (never enlarged to it).
MAX_SIDE = 1024
#: The fine image is the source reduced by the largest factor in (1, 2, 4) that keeps its long side at
#: least this: a 4000 x 3000 JPEG decodes at 1/4 scale (1000 x 750), a 1600 px one at 1/2 (800 px), a
#: 1400 px one in full. 1/8 is never used: it would shrink a JPEG block to one pixel, leaving no grid to
#: measure.
FINE_MIN_SIDE = 768
MAX_REDUCTION = 4
#: Changing how pixels are decoded changes every feature: this string is part of each feature version.
#: 6: never upsampled (fine + view images), ICC profiles converted to sRGB, float TIFFs scaled.
DECODE_VERSION = f"decode6-{MAX_SIDE}-{FINE_MIN_SIDE}x{MAX_REDUCTION}"

#: File extensions treated as photos (lower case). Anything else in an album folder is ignored.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".heic", ".heif",
     ".avif"}
)
#: Camera RAW extensions (lower case): decoded through LibRaw by :mod:`iqc_dagster.core.raw`.
RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"})
#: The only formats Pillow may open (its plugin names): photo formats. Anything else, whatever its
#: extension (a PostScript or PDF file named .jpg, which Pillow would hand to Ghostscript), is refused
#: before any plugin but these reads it. MPO is how Pillow names a JPEG with a multi-picture index.
PHOTO_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF", "HEIF", "AVIF")
_PHOTO_FORMAT_NAMES = frozenset(PHOTO_FORMATS) | {"MPO"}

try:  # HEIC/HEIF (iPhone photos) through libheif; without it such files are listed as unreadable
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a pinned dependency
    pass

# Refuse images whose *declared* size is absurd (decompression bombs): above 200 megapixels, more than
# any camera sensor sold today (large stitched panoramas excepted). `_open` turns Pillow's warning above
# this value into a refusal; Pillow itself raises DecompressionBombError above twice it.
Image.MAX_IMAGE_PIXELS = 200_000_000

#: EXIF orientation -> the transpose that makes the photo upright (as ImageOps.exif_transpose).
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}

_HASH_CHUNK = 1 << 20
#: Marks content hashes made by :func:`hash_file`; hashes without it (an older algorithm) are recomputed.
CONTENT_HASH_PREFIX = "xxh3:"
_EXIF_ORIENTATION = 0x0112
_EXIF_DATETIME = 0x0132
_EXIF_IFD = 0x8769
_EXIF_DATETIME_ORIGINAL = 0x9003


class UnreadableImage(Exception):
    """A file that looks like a photo but cannot be decoded. ``str(exc)`` is a short reason for users."""


@dataclass(frozen=True)
class PhotoInfo:
    """What the file header says, without decoding pixels."""

    width: int
    height: int
    format: str
    orientation: int
    captured_at: dt.datetime | None


@dataclass
class Decoded:
    """The pixels of one photo, upright, shared by every feature (see the module docstring).

    ``rgb`` is the view image (long side at most ``MAX_SIDE``); ``fine`` the source reduced by the
    integer ``reduction`` only (defaults to ``rgb`` with ``reduction`` 1, for images built in memory).
    """

    rgb: np.ndarray  # H x W x 3, uint8, upright: the view image
    source_width: int  # upright size of the original file, before any reduction
    source_height: int
    fine: np.ndarray | None = None  # h x w x 3, uint8, upright: no interpolation, ``reduction`` x smaller
    reduction: int = 1  # source pixels per fine pixel, along each axis (DCT scale or box size)
    jpeg_quality: float = float("nan")  # IJG-equivalent quality of the file's luma table (JPEG only)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.fine is None:
            self.fine = self.rgb

    @property
    def source_long_side(self) -> int:
        return max(self.source_width, self.source_height)

    @property
    def fine_long_side(self) -> int:
        return max(self.fine.shape[:2])

    @cached_property
    def gray(self) -> np.ndarray:
        """Luma (ITU-R 601) of the view image as uint8, H x W."""
        return cv2.cvtColor(self.rgb, cv2.COLOR_RGB2GRAY)

    @cached_property
    def fine_gray(self) -> np.ndarray:
        """Luma of the fine image: pixels no interpolation has touched (noise, JPEG blocking)."""
        return self.gray if self.fine is self.rgb else cv2.cvtColor(self.fine, cv2.COLOR_RGB2GRAY)

    def gray_at(self, long_side: int) -> np.ndarray:
        """The grey image area-reduced from ``fine`` to a long side of ``long_side``; cached.

        Never enlarged: a photo smaller than ``long_side`` is returned at its own size.
        """
        key = ("gray", long_side)
        if key not in self._cache:
            g = self.fine_gray
            h, w = g.shape
            scale = long_side / max(h, w)
            if scale >= 1.0 - 1e-6:
                self._cache[key] = g
            else:
                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                self._cache[key] = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
        return self._cache[key]


def hash_file(path: str | os.PathLike) -> str:
    """Content hash of a file, ``"xxh3:"`` + 128-bit XXH3 in hex: the key of every cached feature and
    embedding. XXH3 is not cryptographic, which a cache of one's own photos does not need, and hashes a
    3 MB photo in 0.15 ms where BLAKE2b took 4-6 ms (the largest share of the inventory's work)."""
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return CONTENT_HASH_PREFIX + h.hexdigest()


def _parse_exif_datetime(value) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return dt.datetime.strptime(value.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


#: Signatures of common files that are not images at all (Pillow has no opener for them), for reasons.
_OTHER_FILES = ((b"%PDF", "PDF document"), (b"PK\x03\x04", "ZIP archive"), (b"ftyp", "video file"),
                (b"\x1aE\xdf\xa3", "video file"))


def _photo_formats() -> list[str]:
    Image.init()
    return [f for f in PHOTO_FORMATS if f in Image.OPEN]


def _why_unidentified(path: str | os.PathLike) -> str:
    """A true reason for a file no photo plugin accepted: a damaged photo (the plugin's own words,
    e.g. a bad PNG checksum), another kind of file Pillow knows (named, never opened), or neither."""
    try:
        with open(path, "rb") as f:
            prefix = f.read(64)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    allowed = set(_photo_formats())
    for magic, what in _OTHER_FILES:
        if prefix.startswith(magic) or (magic == b"ftyp" and prefix[4:8] == b"ftyp" and prefix[8:10] in (b"qt", b"mp", b"is", b"M4", b"3g")):
            return f"not a photo: {what} (only {', '.join(PHOTO_FORMATS)} are read)"
    for fmt, (factory, accept) in list(Image.OPEN.items()):
        try:
            ok = bool(accept(prefix)) if accept else False
        except Exception:
            ok = False
        if not ok:
            continue
        if fmt not in allowed:
            return f"not a photo: {fmt} file (only {', '.join(PHOTO_FORMATS)} are read)"
        try:  # the photo plugin's own complaint (header parsing only, no pixels)
            with open(path, "rb") as f:
                factory(f, os.fspath(path)).close()
        except Exception as exc:
            text = str(exc).strip() or type(exc).__name__
            return f"damaged {fmt} file: {text}"
        return f"damaged {fmt} file"
    return "not an image, or a format this build cannot read"


def open_error_reason(exc: OSError) -> str:
    """The :class:`UnreadableImage` reason for an ``OSError`` met while opening a photo (also a RAW
    file's, :mod:`iqc_dagster.core.raw`)."""
    if isinstance(exc, FileNotFoundError):
        return "file disappeared before it could be read"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot open: {exc.strerror or exc}"


def _check_regular(path: str | os.PathLike) -> None:
    """Refuse FIFOs, sockets and devices (also behind links) before anything opens them: a FIFO blocks
    the reader forever and /dev/zero never ends."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UnreadableImage(open_error_reason(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableImage("not a regular file")


def _open(path: str | os.PathLike) -> Image.Image:
    if not hasattr(path, "read"):  # a file object (a RAW file's embedded preview) needs no check
        _check_regular(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path, formats=_photo_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(f"image too large (decompression bomb?): {exc}") from None
    except UnidentifiedImageError:
        raise UnreadableImage(_why_unidentified(path)) from None
    except OSError as exc:
        raise UnreadableImage(open_error_reason(exc)) from None
    if im.format not in _PHOTO_FORMAT_NAMES:  # formats= already ensures it; a plugin may rename itself
        im.close()
        raise UnreadableImage(f"not a photo: {im.format} file (only {', '.join(PHOTO_FORMATS)} are read)")
    return im


def probe(path: str | os.PathLike) -> PhotoInfo:
    """Read size, format, EXIF orientation and capture time from the header (no pixel decode)."""
    if is_raw_name(os.fspath(path)):  # camera RAW: LibRaw and exiv2 (core/raw.py)
        from iqc_dagster.core import raw

        return raw.probe(path)
    with _open(path) as im:
        try:
            exif = im.getexif()
            orientation = int(exif.get(_EXIF_ORIENTATION, 1) or 1)
            captured = _parse_exif_datetime(exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL))
            captured = captured or _parse_exif_datetime(exif.get(_EXIF_DATETIME))
        except Exception:  # a corrupt EXIF block must not make a readable photo unreadable
            orientation, captured = 1, None
        if orientation not in range(1, 9):
            orientation = 1
        w, h = im.size
        if w <= 0 or h <= 0:
            raise UnreadableImage("image has no pixels")
        return PhotoInfo(width=w, height=h, format=im.format or "unknown", orientation=orientation,
                         captured_at=captured)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode → 8-bit sRGB; an embedded ICC profile (Display P3, Adobe RGB, CMYK, grey) is
    converted to sRGB; transparency is composited on mid-grey; 16-bit is scaled, not clipped; floats in
    0..1 are scaled to 0..255 and NaN is black."""
    from iqc_dagster.core import colour

    converted = colour.to_srgb(im)
    if converted is not None:
        im = converted
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _scaled_grey(im).convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (128, 128, 128, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


#: The IJG (libjpeg) base luminance quantisation table, row by row; quality q scales it by 5000/q % below
#: q 50 and by (200 - 2q) % above.
_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
                      14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
                      18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
                      49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)


def jpeg_quality(im: Image.Image) -> float:
    """The IJG-equivalent quality (1-100) of a JPEG's luminance quantisation table, from the header alone
    (NaN when there is none). Exact for files written by libjpeg and its descendants (Pillow, OpenCV,
    most software); for a camera maker's own tables it is the IJG quality that quantises as coarsely."""
    tables = getattr(im, "quantization", None) or {}
    table = tables.get(0)
    if table is None or len(table) != 64:
        return float("nan")
    t = np.asarray(table, np.float64)
    ok = (t > 1) & (t < 255)  # entries clipped to 1 (high quality) or 255 (very low) carry no scale
    ratios = 100.0 * t[ok] / _IJG_LUMA[ok]
    scale = float(np.median(ratios)) if ratios.size else 100.0 * float(t.sum()) / float(_IJG_LUMA.sum())
    q = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return float(min(100.0, max(1.0, q)))


def reduction_for(long_side: int) -> int:
    """The integer reduction of a source with this long side: the largest of 1, 2, 4 that keeps the fine
    image's long side at least ``FINE_MIN_SIDE``."""
    s = 1
    while s < MAX_REDUCTION and long_side // (2 * s) >= FINE_MIN_SIDE:
        s *= 2
    return s


def box_reduce(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` (grey or RGB) reduced by the integer factor ``k`` as an exact k x k box average (the ragged
    border dropped): each output pixel is the mean of k x k source pixels, nothing interpolated."""
    h, w = a.shape[:2]
    return cv2.resize(a[:h // k * k, :w // k * k], (w // k, h // k), interpolation=cv2.INTER_AREA)


def _area(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """``rgb`` area-reduced to ``long_side`` (returned as it is when it is not larger)."""
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # OpenCV resizes about 10x faster than Pillow (1 vs 12 ms for 1000 -> 1024 px)
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def decode(path: str | os.PathLike, max_side: int = MAX_SIDE) -> Decoded:
    """Decode ``path`` once: upright, ``fine`` at an integer reduction, ``rgb`` at most ``max_side``.

    Raises :class:`UnreadableImage` with a short reason when the file cannot be decoded.
    """
    if not hasattr(path, "read") and is_raw_name(os.fspath(path)):  # camera RAW: core/raw.py
        from iqc_dagster.core import raw

        return raw.decode(path, max_side)
    im = _open(path)
    try:
        with im:
            w0, h0 = im.size
            orientation = 1
            try:
                orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            except Exception:
                pass
            want = reduction_for(max(w0, h0))
            quality = jpeg_quality(im) if im.format == "JPEG" else float("nan")
            if im.format == "JPEG" and want > 1:
                # draft() picks the largest DCT scale whose result is still >= the requested size; asking
                # for the floor of size / want gives exactly 1/want (libjpeg rounds the result up).
                im.draft("RGB", (max(1, w0 // want), max(1, h0 // want)))
            im.seek(0)  # first frame of animations
            im.load()
            upright = _to_rgb(im)
            if orientation in _TRANSPOSE:  # the orientation read above; EXIF is not parsed again
                upright = upright.transpose(_TRANSPOSE[orientation])
            fine = np.asarray(upright, dtype=np.uint8)
            done = max(1, round(max(w0, h0) / max(fine.shape[:2])))  # what DCT scaling already did
            reduction = done
            if want > done and fine.ndim == 3:  # no DCT scaling (not a JPEG): exact box average instead
                fine = box_reduce(fine, want // done)
                reduction = want
            rgb = _area(fine, max_side)
    except UnreadableImage:
        raise
    except Exception as exc:  # a corrupt file must never stop the run: it becomes a reason
        raise UnreadableImage(f"decode failed: {type(exc).__name__}: {exc}") from None
    if fine.ndim != 3 or fine.shape[2] != 3 or fine.size == 0:
        raise UnreadableImage("decode produced no pixels")
    sw, sh = (h0, w0) if orientation in (5, 6, 7, 8) else (w0, h0)
    fine = np.ascontiguousarray(fine)
    rgb = fine if rgb is fine else np.ascontiguousarray(rgb)
    return Decoded(rgb=rgb, source_width=sw, source_height=sh, fine=fine, reduction=reduction,
                   jpeg_quality=quality)


def _scaled_grey(im: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float single-channel image → 8-bit grey, scaled to its range:
    16-bit (and integers above 255) from 0..65535, floats whose values lie in 0..1 from 0..1, anything
    else from 0..255. NaN and infinities are black, without a RuntimeWarning."""
    a = np.asarray(im, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 0.0)
    top = float(a.max()) if a.size else 0.0
    if im.mode.startswith("I;16") or top > 255:
        hi = 65535.0
    elif im.mode == "F" and top <= 1.0:
        hi = 1.0
    else:
        hi = 255.0
    return Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def is_image_name(name: str) -> bool:
    """True for file names with a photo extension; hidden files (``.DS_Store``, ``._x.jpg``) are not."""
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def is_raw_name(name: str) -> bool:
    """True for camera RAW file names or paths (``.CR2``, ``.DNG``, ...); hidden files are not."""
    name = os.path.basename(name)
    return not name.startswith(".") and Path(name).suffix.lower() in RAW_EXTENSIONS

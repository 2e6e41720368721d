"""Camera RAW files (``.dng .cr2 .cr3 .nef .arw .raf .orf .rw2 .pef .srw``), through LibRaw (``rawpy``).

**Decode** (:func:`decode`): the camera's embedded JPEG preview when its long side is at least
:data:`PREVIEW_MIN_SIDE` (the pipeline's view size, :data:`imaging.MAX_SIDE`): it is decoded exactly as a
JPEG file of that size (DCT draft scaling, the same fine and view images), so a RAW with a full-size
preview costs about what that JPEG costs. Otherwise LibRaw demosaics the mosaic at half size (one
pixel per 2 x 2 Bayer cell, camera white balance, sRGB, 8 bits), then the result is box-reduced as any
non-JPEG source. Either way the photo is turned upright by the RAW's orientation (LibRaw's ``flip``),
unless the preview carries its own EXIF orientation.

**Probe** (:func:`probe`): size and orientation from LibRaw (header parse, no pixels), capture time
from the EXIF block read by exiv2 (:func:`exif_fields`), which also reads the exposure bias, focus
distance and the other tags :mod:`iqc_dagster.core.brackets` needs.

**RAW + JPEG** (:func:`pair_companions`): a RAW file and a JPEG (or other photo) of the same stem in the
same folder are one shot. It is scored once: from the JPEG when its long side is at least the view size
(the camera's own full rendering of the same data), else from the RAW; the other file is its
*companion*: listed with it in the ranked CSV, and given the same XMP sidecar values.

Unreadable and unsupported RAW files raise :class:`imaging.UnreadableImage` with a true reason
("RAW file not readable by LibRaw 0.22.2: unknown or unsupported format", "damaged RAW file: ..."). No Dagster import here.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from iqc_dagster.core import imaging

#: Decode from the embedded preview when its long side is at least this (the view image's size).
PREVIEW_MIN_SIDE = imaging.MAX_SIDE
#: Status of the inventory row of a RAW+JPEG companion file (not scored on its own).
COMPANION_STATUS = "companion"

#: LibRaw ``flip`` -> EXIF orientation.
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

_exiv2_lock = threading.Lock()  # exiv2's global tables (namespaces, logging) are not thread-safe


def _rawpy():
    import rawpy

    return rawpy


def libraw_version() -> str:
    try:
        return ".".join(str(x) for x in _rawpy().libraw_version)
    except Exception:  # pragma: no cover - rawpy is a pinned dependency
        return "unknown"


def _reason(exc: Exception) -> str:
    rawpy = _rawpy()
    msg = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        return f"RAW file not readable by LibRaw {libraw_version()}: unknown or unsupported format"
    if isinstance(exc, (rawpy.LibRawIOError, rawpy.LibRawDataError, rawpy.LibRawTooBigError)):
        return f"damaged RAW file: {msg}"
    if isinstance(exc, MemoryError):
        return "RAW file too large to decode"
    return f"RAW decode failed: {type(exc).__name__}: {msg}"


def _open(path: str | os.PathLike):
    imaging._check_regular(path)
    rawpy = _rawpy()
    try:
        return rawpy.imread(os.fspath(path))
    except (FileNotFoundError, PermissionError) as exc:
        raise imaging.UnreadableImage(imaging.open_error_reason(exc)) from None
    except Exception as exc:
        raise imaging.UnreadableImage(_reason(exc)) from None


def _orientation(raw) -> int:
    return _FLIP_TO_ORIENTATION.get(int(raw.sizes.flip), 1)


# --- EXIF -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExifFields:
    """The EXIF values iqc reads from a file's header (None when absent)."""

    captured_at: dt.datetime | None = None
    exposure_bias: float | None = None  # EV
    exposure_time: float | None = None  # seconds
    f_number: float | None = None
    iso: float | None = None
    focal_length: float | None = None  # mm
    subject_distance: float | None = None  # m
    make: str | None = None
    model: str | None = None


_EXIF_KEYS = {
    "captured_at": ("Exif.Photo.DateTimeOriginal", "Exif.Image.DateTimeOriginal", "Exif.Image.DateTime"),
    "exposure_bias": ("Exif.Photo.ExposureBiasValue", "Exif.Image.ExposureBiasValue"),
    "exposure_time": ("Exif.Photo.ExposureTime", "Exif.Image.ExposureTime"),
    "f_number": ("Exif.Photo.FNumber", "Exif.Image.FNumber"),
    "iso": ("Exif.Photo.ISOSpeedRatings",),
    "focal_length": ("Exif.Photo.FocalLength", "Exif.Image.FocalLength"),
    "subject_distance": ("Exif.Photo.SubjectDistance", "Exif.Image.SubjectDistance",
                         "Exif.CanonFi.FocusDistanceUpper", "Exif.NikonLd3.FocusDistance"),
    "make": ("Exif.Image.Make",),
    "model": ("Exif.Image.Model",),
}


def exif_fields(path: str | os.PathLike) -> ExifFields:
    """:class:`ExifFields` of any photo or RAW file exiv2 can read (header only); empty on failure.

    exiv2 reads EXIF from JPEG, TIFF, PNG, WebP, HEIF/AVIF and every RAW format iqc lists."""
    import exiv2

    try:
        with _exiv2_lock:
            exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.mute)
            image = exiv2.ImageFactory.open(os.fspath(path))
            image.readMetadata()
            data = image.exifData()
            out = {}
            for field, keys in _EXIF_KEYS.items():
                for key in keys:
                    try:
                        it = data.findKey(exiv2.ExifKey(key))
                    except exiv2.Exiv2Error:  # a tag this libexiv2 does not know
                        continue
                    if it == data.end():
                        continue
                    if field in ("captured_at", "make", "model"):
                        text = it.toString().strip().rstrip("\x00")
                        value = imaging._parse_exif_datetime(text) if field == "captured_at" else (text or None)
                    else:
                        value = float(it.toFloat(0))
                        if not math.isfinite(value):
                            value = None
                    if value is not None:
                        out[field] = value
                        break
    except Exception:  # no EXIF, or a file exiv2 does not know: nothing to report
        return ExifFields()
    return ExifFields(**out)


# --- probe and decode --------------------------------------------------------------------------------

def probe(path: str | os.PathLike) -> imaging.PhotoInfo:
    """Size (upright as stored: width x height of the sensor image), format, orientation and capture
    time of a RAW file, without decoding pixels."""
    raw = _open(path)
    try:
        s = raw.sizes
        w, h = int(s.width), int(s.height)
        orientation = _orientation(raw)
    except Exception as exc:
        raise imaging.UnreadableImage(_reason(exc)) from None
    finally:
        raw.close()
    if w <= 0 or h <= 0:
        raise imaging.UnreadableImage("RAW file has no image data")
    fmt = Path(os.fspath(path)).suffix.lstrip(".").upper() or "RAW"
    return imaging.PhotoInfo(width=w, height=h, format=fmt, orientation=orientation,
                             captured_at=exif_fields(path).captured_at)


_TURN = {  # EXIF orientation -> numpy ops making the photo upright (as imaging._TRANSPOSE)
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1),
}


def _turn(decoded: imaging.Decoded, orientation: int) -> imaging.Decoded:
    if orientation not in _TURN:
        return decoded
    op = _TURN[orientation]
    fine = np.ascontiguousarray(op(decoded.fine))
    rgb = fine if decoded.rgb is decoded.fine else np.ascontiguousarray(op(decoded.rgb))
    sw, sh = decoded.source_width, decoded.source_height
    if orientation in (5, 6, 7, 8):
        sw, sh = sh, sw
    return imaging.Decoded(rgb=rgb, source_width=sw, source_height=sh, fine=fine, reduction=decoded.reduction,
                           jpeg_quality=decoded.jpeg_quality)


def _preview(raw) -> bytes | np.ndarray | None:
    rawpy = _rawpy()
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    except Exception:  # a damaged preview: fall back to the mosaic
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        return bytes(thumb.data)
    if thumb.format == rawpy.ThumbFormat.BITMAP:
        return np.asarray(thumb.data)
    return None


def _preview_size(data: bytes | np.ndarray) -> tuple[int, int, int]:
    """(width, height, own EXIF orientation) of a preview, from its header."""
    if isinstance(data, np.ndarray):
        return data.shape[1], data.shape[0], 1
    from PIL import Image

    with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
        try:
            own = int(im.getexif().get(0x0112, 1) or 1)
        except Exception:
            own = 1
        return im.size[0], im.size[1], own


def _from_array(rgb: np.ndarray, already: int, max_side: int, source: tuple[int, int]) -> imaging.Decoded:
    """A Decoded from an RGB array that is ``already`` times smaller than the sensor image."""
    fine = np.ascontiguousarray(rgb, dtype=np.uint8)
    k = imaging.reduction_for(max(fine.shape[:2]))
    if k > 1:
        fine = imaging.box_reduce(fine, k)
    out = imaging._area(fine, max_side)
    return imaging.Decoded(rgb=np.ascontiguousarray(out), source_width=source[0], source_height=source[1],
                           fine=fine, reduction=already * k)


def decode(path: str | os.PathLike, max_side: int = imaging.MAX_SIDE) -> imaging.Decoded:
    """Decode a RAW file once: from its embedded preview when it is large enough, else a half-size
    demosaic (see the module docstring). Upright; ``UnreadableImage`` with a reason on failure."""
    raw = _open(path)
    try:
        orientation = _orientation(raw)
        preview = _preview(raw)
        if preview is not None:
            try:
                pw, ph, own = _preview_size(preview)
            except Exception:
                preview = None
        if preview is not None and max(pw, ph) >= PREVIEW_MIN_SIDE:
            if isinstance(preview, np.ndarray):
                decoded = _from_array(preview, 1, max_side, (pw, ph))
            else:
                decoded = imaging.decode(io.BytesIO(preview), max_side)
            return decoded if own != 1 else _turn(decoded, orientation)
        s = raw.sizes  # before postprocess: half_size halves them
        size = (int(s.width), int(s.height))
        rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8, user_flip=0)
        return _turn(_from_array(rgb, 2, max_side, size), orientation)
    except imaging.UnreadableImage:
        raise
    except Exception as exc:
        raise imaging.UnreadableImage(_reason(exc)) from None
    finally:
        raw.close()


# --- RAW + JPEG pairs ---------------------------------------------------------------------------------

def _stem_key(rel: str) -> tuple[str, str]:
    p = PurePosixPath(rel)
    return str(p.parent), p.stem.lower()


def _unchanged(row: dict, old: dict | None) -> bool:
    return old is not None and old.get("bytes") == row.get("bytes") and old.get("mtime_ns") == row.get("mtime_ns")


def pair_companions(rows: list[dict], previous: dict[str, dict] | None = None) -> dict[str, str]:
    """``{companion path: primary path}`` for inventory rows (dicts with ``path``, ``status``, ``width``,
    ``height``) of RAW + JPEG shots: same folder, same stem (any case), one RAW and one photo file, both
    readable. The primary is the photo file when its long side is at least the view size, else the RAW.
    A stem with several RAW or several photo files (``a.cr2`` + ``a.dng``) pairs nothing: it is ambiguous.

    ``previous`` (path -> the last inventory's row) keeps a pair stable and mends a failed one: when both
    files are unchanged, the last choice stands; when the last primary failed to decode (its row is
    ``unreadable``, the file unchanged), the other file of the shot is scored instead.
    """
    previous = previous or {}
    by_stem: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r.get("status") in ("ok", COMPANION_STATUS):
            by_stem.setdefault(_stem_key(str(r["path"])), []).append(r)
    out: dict[str, str] = {}
    for members in by_stem.values():
        if len(members) != 2:
            continue
        raws = [m for m in members if imaging.is_raw_name(str(m["path"]).rsplit("/", 1)[-1])]
        photos = [m for m in members if m not in raws]
        if len(raws) != 1 or len(photos) != 1:
            continue
        r, p = raws[0], photos[0]
        try:
            p_long = max(int(p["width"]), int(p["height"]))
        except (TypeError, ValueError):
            p_long = 0
        primary, companion = (p, r) if p_long >= imaging.MAX_SIDE else (r, p)
        op, oc = previous.get(str(primary["path"])), previous.get(str(companion["path"]))
        if _unchanged(primary, op) and _unchanged(companion, oc):
            if op.get("status") == "unreadable" or (op.get("status") == COMPANION_STATUS
                                                     and oc.get("status") == "ok"):
                primary, companion = companion, primary  # the last choice, or away from a failed decode
        out[str(companion["path"])] = str(primary["path"])
    return out


def companions_of(photos) -> dict[str, list[str]]:
    """``{primary path: [companion paths]}`` from an album's inventory table (pandas DataFrame or rows),
    as :func:`pair_companions` marked it."""
    rows = photos.to_dict("records") if hasattr(photos, "to_dict") else list(photos)
    out: dict[str, list[str]] = {}
    # the rows as their own previous inventory: a pair keeps the primary the inventory chose (which is not
    # the default one after a failed decode)
    for comp, primary in pair_companions(rows, {str(r["path"]): r for r in rows}).items():
        out.setdefault(primary, []).append(comp)
    return out


__all__ = ["COMPANION_STATUS", "ExifFields", "PREVIEW_MIN_SIDE", "companions_of", "decode", "exif_fields",
           "libraw_version", "pair_companions", "probe"]

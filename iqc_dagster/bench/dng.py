"""Write small, valid DNG files for the tests and for `iqc perf --scenarios raw` (no binary fixtures).

A DNG is a TIFF: IFD0 holds the camera's tags and, in a real camera file, a JPEG preview; a SubIFD holds
the Bayer mosaic (``PhotometricInterpretation`` 32803, CFA). LibRaw (rawpy) decodes the mosaic, and
``extract_thumb`` returns the preview. This writer lays the TIFF out by hand (little-endian, one strip
per image) so it needs nothing beyond numpy and Pillow, and writes exactly what real cameras do: a
baseline-JPEG preview in IFD0, the raw data in a SubIFD, EXIF in an Exif IFD (capture time, exposure
bias, subject distance).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL = 1, 2, 3, 4, 5, 7, 10
_SIZE = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1, SRATIONAL: 8}


class _Ptr:
    """A LONG entry whose value is the file offset of an IFD (index) or of a data blob (index)."""

    def __init__(self, kind: str, index: int):
        self.kind, self.index = kind, index


def _rational(x: float, signed: bool = False) -> tuple[int, int]:
    den = 1000
    return int(round(x * den)), den


def _pack_values(typ: int, values) -> bytes:
    if typ == ASCII:
        b = values.encode("ascii") + b"\0"
        return b
    if typ in (BYTE, UNDEFINED):
        return bytes(values)
    if typ == SHORT:
        return struct.pack(f"<{len(values)}H", *values)
    if typ == LONG:
        return struct.pack(f"<{len(values)}I", *values)
    if typ in (RATIONAL, SRATIONAL):
        fmt = "<ii" if typ == SRATIONAL else "<II"
        return b"".join(struct.pack(fmt, *_rational(v)) for v in values)
    raise ValueError(typ)


def _write_tiff(path: Path, ifds: list[list[tuple]], blobs: list[bytes]) -> None:
    """``ifds``: lists of ``(tag, type, values)``; a value may be a :class:`_Ptr`. IFD 0 is the first;
    the others are reached through pointers only (SubIFDs, Exif IFD)."""
    def count_of(typ, values):
        if isinstance(values, _Ptr):
            return 1
        if typ == ASCII:
            return len(values.encode("ascii")) + 1
        return len(values)

    def data_len(typ, values):
        return 4 if isinstance(values, _Ptr) else count_of(typ, values) * _SIZE[typ]

    # pass 1: offsets
    offsets, pos = [], 8
    for entries in ifds:
        offsets.append(pos)
        pos += 2 + 12 * len(entries) + 4
        for tag, typ, values in entries:
            n = data_len(typ, values)
            if n > 4:
                pos += n + (n & 1)
    blob_offsets = []
    for b in blobs:
        blob_offsets.append(pos)
        pos += len(b) + (len(b) & 1)

    def resolve(p: _Ptr) -> int:
        return offsets[p.index] if p.kind == "ifd" else blob_offsets[p.index]

    out = bytearray(b"II*\0" + struct.pack("<I", offsets[0]))
    for entries in ifds:
        entries = sorted(entries, key=lambda e: e[0])
        head = bytearray(struct.pack("<H", len(entries)))
        extra = bytearray()
        extra_at = len(out) + 2 + 12 * len(entries) + 4
        for tag, typ, values in entries:
            if isinstance(values, _Ptr):
                payload = struct.pack("<I", resolve(values))
                count = 1
            else:
                payload = _pack_values(typ, values)
                count = count_of(typ, values)
            if len(payload) <= 4:
                head += struct.pack("<HHI", tag, typ, count) + payload.ljust(4, b"\0")
            else:
                head += struct.pack("<HHII", tag, typ, count, extra_at + len(extra))
                extra += payload + (b"\0" if len(payload) & 1 else b"")
        head += struct.pack("<I", 0)  # no next IFD (previews and raw data are linked as SubIFDs)
        out += head + extra
    for b in blobs:
        out += b + (b"\0" if len(b) & 1 else b"")
    assert len(out) == pos
    path.write_bytes(bytes(out))


def mosaic_from_rgb(rgb: np.ndarray, white: int = 4095) -> np.ndarray:
    """An RGGB Bayer mosaic (uint16, 12-bit) sampled from an RGB image (uint8, H x W x 3, even sides)."""
    lin = (rgb.astype(np.float64) / 255.0) ** 2.2 * white
    h, w = rgb.shape[:2]
    m = np.empty((h, w), np.float64)
    m[0::2, 0::2] = lin[0::2, 0::2, 0]
    m[0::2, 1::2] = lin[0::2, 1::2, 1]
    m[1::2, 0::2] = lin[1::2, 0::2, 1]
    m[1::2, 1::2] = lin[1::2, 1::2, 2]
    return np.clip(np.round(m), 0, white).astype(np.uint16)


def write_dng(path: str | Path, rgb: np.ndarray, *, preview: np.ndarray | None = None, preview_quality: int = 90,
              orientation: int = 1, captured: str | None = "2024:05:01 10:00:00", exposure_bias: float | None = None,
              subject_distance: float | None = None, make: str = "IQC", model: str = "Test Camera") -> Path:
    """Write ``rgb`` (uint8 H x W x 3, even sides) as a DNG: a 12-bit RGGB mosaic, optionally with a JPEG
    ``preview`` (uint8 array) in IFD0 as cameras store it. EXIF: orientation, capture time, exposure bias
    and subject distance when given."""
    path = Path(path)
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        raise ValueError("the mosaic needs even sides")
    cfa = mosaic_from_rgb(rgb)
    blobs = [cfa.astype("<u2").tobytes()]
    camera = [
        (271, ASCII, make), (272, ASCII, model), (274, SHORT, [orientation]),
        (50706, BYTE, [1, 4, 0, 0]), (50707, BYTE, [1, 1, 0, 0]), (50708, ASCII, f"{make} {model}"),
        # identity camera -> XYZ matrix, neutral white balance: colours come out roughly as they went in
        (50721, SRATIONAL, [3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570]),
        (50728, RATIONAL, [1.0, 1.0, 1.0]), (50778, SHORT, [21]),
    ]
    if captured:
        camera.append((306, ASCII, captured))
    raw = [
        (254, LONG, [0]), (256, LONG, [w]), (257, LONG, [h]), (258, SHORT, [16]), (259, SHORT, [1]),
        (262, SHORT, [32803]), (273, LONG, _Ptr("blob", 0)), (277, SHORT, [1]), (278, LONG, [h]),
        (279, LONG, [len(blobs[0])]), (284, SHORT, [1]), (33421, SHORT, [2, 2]), (33422, BYTE, [0, 1, 1, 2]),
        (50714, SHORT, [0]), (50717, SHORT, [4095]),
    ]
    exif = []
    if captured:
        exif.append((36867, ASCII, captured))
    if exposure_bias is not None:
        exif.append((37380, SRATIONAL, [exposure_bias]))
    if subject_distance is not None:
        exif.append((37382, RATIONAL, [subject_distance]))
    ifds: list[list[tuple]] = []
    if preview is not None:
        buf = io.BytesIO()
        Image.fromarray(preview).save(buf, "JPEG", quality=preview_quality)
        blobs.append(buf.getvalue())
        ph, pw = preview.shape[:2]
        ifd0 = camera + [
            (254, LONG, [1]), (256, LONG, [pw]), (257, LONG, [ph]), (258, SHORT, [8, 8, 8]), (259, SHORT, [7]),
            (262, SHORT, [6]), (273, LONG, _Ptr("blob", 1)), (277, SHORT, [3]), (278, LONG, [ph]),
            (279, LONG, [len(blobs[1])]), (330, LONG, _Ptr("ifd", 1)),
        ]
        ifds = [ifd0, raw]
    else:
        ifds = [camera + raw]
    if exif:
        ifds[0].append((34665, LONG, _Ptr("ifd", len(ifds))))
        ifds.append(exif)
    _write_tiff(path, ifds, blobs)
    return path


def scene(w: int = 1600, h: int = 1200, seed: int = 0) -> np.ndarray:
    """A detailed test scene (gradients, edges, texture), uint8 RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 0.5 + 0.4 * np.sin(xx / 37.0 + seed) * np.cos(yy / 53.0)
    g = 0.5 + 0.4 * np.cos((xx + yy) / 41.0)
    b = (xx / w) * 0.8 + 0.1
    img = np.stack([r, g, b], axis=-1)
    img[(xx // 100 + yy // 100) % 2 == 0] *= 0.7  # hard edges
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(img * 255, 0, 255).astype(np.uint8)

"""ICC v2 matrix/TRC display profiles built from primaries, for tests (Pillow can only create sRGB/Lab/XYZ).

Display P3 (P3 primaries, D65 white, sRGB-like tone curve approximated by gamma 2.2) and Adobe RGB
(1998) (gamma 563/256), both written as a LittleCMS-readable ICC profile in a few hundred bytes.
"""

from __future__ import annotations

import struct

import numpy as np

D65 = (0.3127, 0.3290)
D50_XYZ = np.array([0.9642, 1.0, 0.8249])
DISPLAY_P3 = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
ADOBE_RGB = ((0.640, 0.330), (0.210, 0.710), (0.150, 0.060))
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def _xyz(xy) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _colorants(primaries, white) -> np.ndarray:
    """RGB -> XYZ (columns R, G, B) adapted from ``white`` to D50 with Bradford, as ICC wants."""
    p = np.stack([_xyz(c) for c in primaries], axis=1)
    w = _xyz(white)
    m = p * np.linalg.solve(p, w)  # scale each primary so R+G+B = white
    src, dst = _BRADFORD @ w, _BRADFORD @ D50_XYZ
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(dst / src) @ _BRADFORD
    return adapt @ m


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _xyz_tag(v) -> bytes:
    return b"XYZ " + b"\0" * 4 + b"".join(_s15(c) for c in v)


def _desc(text: str) -> bytes:
    a = text.encode("ascii") + b"\0"
    return b"desc" + b"\0" * 4 + struct.pack(">I", len(a)) + a + b"\0" * 8 + b"\0" * 3 + b"\0" * 67


def rgb_profile(primaries, gamma: float, white=D65, name: str = "test RGB") -> bytes:
    """An ICC v2 RGB display profile (matrix + gamma curves)."""
    m = _colorants(primaries, white)
    curv = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, int(round(gamma * 256))) + b"\0\0"
    tags = [(b"desc", _desc(name)), (b"cprt", b"text" + b"\0" * 4 + b"public domain\0"),
            (b"wtpt", _xyz_tag(D50_XYZ)), (b"rXYZ", _xyz_tag(m[:, 0])), (b"gXYZ", _xyz_tag(m[:, 1])),
            (b"bXYZ", _xyz_tag(m[:, 2])), (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv)]
    table_len = 4 + 12 * len(tags)
    offset = 128 + table_len
    entries, data = [], b""
    for sig, body in tags:
        while len(body) % 4:
            body += b"\0"
        entries.append(struct.pack(">4sII", sig, offset + len(data), len(body)))
        data += body
    size = 128 + table_len + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 4 + struct.pack(">I", 0)
              + b"\0" * 8 + b"\0" * 8 + struct.pack(">I", 0) + b"".join(_s15(c) for c in D50_XYZ)
              + b"\0" * 4 + b"\0" * 44)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + data


def display_p3() -> bytes:
    return rgb_profile(DISPLAY_P3, 2.2, name="Display P3 (test)")


def adobe_rgb() -> bytes:
    return rgb_profile(ADOBE_RGB, 563 / 256, name="Adobe RGB (1998) (test)")

"""A corpus of broken and odd photo files, as a real library holds them (built by the tests)."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from iqc_dagster.core import names
from iqc_dagster_tests import icc
from iqc_dagster_tests.conftest import real_photo, save_jpeg


def _png_bomb(path: Path, w: int = 40000, h: int = 40000) -> None:
    """A tiny PNG whose header declares w x h pixels (1.6 gigapixels): a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                     + chunk(b"IEND", b""))


def png_bad_crc(path: Path) -> None:
    """A small PNG whose IHDR chunk has a wrong checksum (a bit flipped on an old card)."""
    def chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
        crc = zlib.crc32(kind + data) if crc is None else crc
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr, 0x12345678)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 52)) + chunk(b"IEND", b""))


def with_profile(rgb: np.ndarray, profile: bytes) -> Image.Image:
    """The sRGB pixels ``rgb`` re-encoded in the colour space of ``profile`` (as a camera in Display P3
    or Adobe RGB mode stores them), with the profile attached when saved."""
    t = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.ImageCmsProfile(__import__("io").BytesIO(profile)),
                                "RGB", "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    return ImageCms.applyTransform(Image.fromarray(rgb), t)


def unix_socket(path: Path) -> None:
    """A UNIX socket file at ``path`` (bound from its folder: socket paths are limited to ~107 bytes)."""
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as s:
            s.bind(path.name)
    finally:
        os.chdir(cwd)


#: file name -> True if it must be ranked, False if it must be listed as unreadable
EXPECTED: dict[str, bool] = {}


def build(folder: Path) -> dict[str, bool]:
    """Write the fault corpus into ``folder``; return {relative path: should_be_ranked}."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = real_photo("astronaut")
    exp: dict[str, bool] = {}

    def good(name):  # ``name``: the real name (str with surrogate escapes, or bytes); keyed as iqc keys it
        name = os.fsdecode(name)
        exp[names.to_key(name)] = True
        return folder / name

    def bad(name):
        name = os.fsdecode(name)
        exp[names.to_key(name)] = False
        return folder / name

    save_jpeg(photo, good("plain.jpg"))
    bad("zero.jpg").write_bytes(b"")
    full = (folder / "plain.jpg").read_bytes()
    bad("truncated.jpg").write_bytes(full[: len(full) // 2])
    bad("text.jpg").write_text("this is not a photo\n")
    _png_bomb(bad("bomb.png"))
    Image.fromarray(photo).convert("CMYK").save(good("cmyk.jpg"), quality=90)
    Image.fromarray((photo[..., 0].astype(np.uint16) * 257)).save(good("sixteen_bit.png"))
    Image.fromarray(photo).convert("L").save(good("grey.jpg"))
    pal = Image.fromarray(real_photo("coffee")).convert("P", palette=Image.Palette.ADAPTIVE)
    pal.save(good("palette_transparent.png"), transparency=0)
    frames = [Image.fromarray(real_photo(n)).resize((200, 150)) for n in ("coffee", "chelsea")]
    frames[0].save(good("animated.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6
    save_jpeg(np.rot90(photo).copy(), good("rotated.jpg"), exif=exif.tobytes())
    Image.fromarray(real_photo("rocket")).save(good("iphone.heic"))
    save_jpeg(real_photo("chelsea"), good("ünïcødé 写真.jpg"))
    save_jpeg(real_photo("coffee"), good("it's a \"quoted\" name.jpg"))
    save_jpeg(real_photo("rocket"), good("sub dir/<b>x'; drop table images;--.jpg"))
    os.symlink("loop.jpg", bad("loop.jpg"))  # a symlink to itself
    os.symlink(folder, folder / "dirloop")  # a symlinked folder back to the album: not followed
    os.symlink("does-not-exist.jpg", bad("dangling.jpg"))
    # --- round 2: names, formats, colours, non-regular files (issue 17)
    small = np.ascontiguousarray(photo[::4, ::4])
    save_jpeg(small, good(b"caf\xe9 latin-1.jpg"))  # not UTF-8
    save_jpeg(small, good("carriage\rreturn.jpg"))
    save_jpeg(small, good("\x1b[31mred\x1b[0m.jpg"))  # would recolour a terminal
    save_jpeg(small, good("back\\slash.jpg"))
    Image.fromarray(small).save(good("phone.jfif"), format="JPEG")
    Image.fromarray(small).save(good("modern.avif"), format="AVIF")
    with_profile(real_photo("coffee"), icc.display_p3()).save(good("iphone_p3.jpg"), quality=92,
                                                              icc_profile=icc.display_p3())
    with_profile(real_photo("coffee"), icc.adobe_rgb()).save(good("adobe_rgb.jpg"), quality=92,
                                                             icc_profile=icc.adobe_rgb())
    grey = real_photo("camera").astype(np.float32) / 255.0
    Image.fromarray(grey, "F").save(good("float01.tif"))
    nan = grey.copy()
    nan[:40, :40] = np.nan
    Image.fromarray(nan, "F").save(good("float_nan.tif"))
    save_jpeg(np.zeros((300, 400, 3), np.uint8), good("black_frame.jpg"))
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(good("one_pixel.png"))
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (6, 900, 3), dtype=np.uint8)).save(good("noise_strip.png"))
    bad("IMG_0001.CR2").write_bytes(b"II*\x00\x10\x00\x00\x00CR\x02\x00" + bytes(200))
    # a DNG is a TIFF, but a plain RGB TIFF named .dng is no RAW file: LibRaw says so, it is listed
    Image.fromarray(small).save(bad("readable.dng"), format="TIFF")
    png_bad_crc(bad("bad_crc.png"))
    bad("postscript.jpg").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    bad("document.jpg").write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    os.mkfifo(bad("fifo.jpg"))
    unix_socket(bad("socket.jpg"))
    os.symlink("/dev/zero", bad("zeros.jpg"))
    return exp


#: Why each round-2 bad file must be listed (a substring of its reason).
REASONS = {"IMG_0001.CR2": "RAW file not readable by LibRaw", "readable.dng": "RAW file not readable by LibRaw",
           "bad_crc.png": "checksum", "postscript.jpg": "not a photo", "document.jpg": "not a photo",
           "fifo.jpg": "not a regular file", "socket.jpg": "not a regular file", "zeros.jpg": "not a regular file",
           "zero.jpg": "empty file", "bomb.png": "too large"}
#: Readable files with no perceptual-hash information: ranked last, never grouped with each other.
NO_DETAIL = {"black_frame.jpg": "blank", "one_pixel.png": "tiny", "noise_strip.png": "tiny"}

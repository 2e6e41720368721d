"""A corpus of broken and odd photo files, as a real library holds them (built by the tests)."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from iqc_dagster_tests.conftest import real_photo, save_jpeg


def _png_bomb(path: Path, w: int = 40000, h: int = 40000) -> None:
    """A tiny PNG whose header declares w x h pixels (1.6 gigapixels): a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                     + chunk(b"IEND", b""))


#: file name -> True if it must be ranked, False if it must be listed as unreadable
EXPECTED: dict[str, bool] = {}


def build(folder: Path) -> dict[str, bool]:
    """Write the fault corpus into ``folder``; return {relative path: should_be_ranked}."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = real_photo("astronaut")
    exp: dict[str, bool] = {}

    def good(name):
        exp[name] = True
        return folder / name

    def bad(name):
        exp[name] = False
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
    return exp

"""Property-based: any file names the OS allows and truncated or corrupted copies of valid photos.
The run completes, every readable photo is ranked exactly once, every unreadable file is listed with a
reason that is true (the file really cannot be decoded), and the photo folder is unchanged."""

import io
import os
import tempfile
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from iqc_dagster.core import imaging, names
from iqc_dagster.core.config import Settings
from iqc_dagster.runner import materialize_album
from iqc_dagster_tests.test_defs_faults import _snapshot


def _photo(seed: int, fmt: str) -> bytes:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, 96 * 72 * 3).reshape(72, 96, 3) + rng.normal(0, 20, (72, 96, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


_names = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_").lstrip(b"."))
_damage = st.one_of(
    st.just(("intact",)),
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("flip"), st.floats(0.0, 1.0), st.integers(1, 255)),
    st.tuples(st.just("junk"), st.binary(max_size=64)),
)
_files = st.lists(st.tuples(_names, st.sampled_from(["JPEG", "PNG", "WEBP", "GIF", "TIFF"]), _damage),
                  min_size=1, max_size=6)


def _apply(data: bytes, damage) -> bytes:
    kind = damage[0]
    if kind == "truncate":
        return data[: int(len(data) * damage[1])]
    if kind == "flip":
        k = min(len(data) - 1, int(len(data) * damage[1]))
        return data[:k] + bytes([data[k] ^ damage[2]]) + data[k + 1:]
    if kind == "junk":
        return damage[1]
    return data


_EXT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "TIFF": ".tif"}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_files)
def test_any_names_and_damaged_photos_rank_every_readable_photo_once(files):
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        album = tmp / "photos" / "album"
        album.mkdir(parents=True)
        written: dict[str, bytes] = {}
        for i, (raw, fmt, damage) in enumerate(files):
            name = os.fsdecode(raw + b"_" + str(i).encode() + _EXT[fmt].encode())
            data = _apply(_photo(i, fmt), damage)
            (album / name).write_bytes(data)
            written[names.to_key(name)] = data
        before = _snapshot(tmp / "photos")
        settings_ = Settings(photo_root=str(tmp / "photos"), db_path=str(tmp / "iqc.duckdb"),
                             output_dir=str(tmp / "out"))
        with dg.DagsterInstance.ephemeral() as instance:
            result = materialize_album("album", settings_, instance=instance)
        assert result.success
        ranked = pd.read_csv(tmp / "out" / "csvs" / "album.csv")
        skipped = pd.read_csv(tmp / "out" / "csvs" / "album_skipped.csv")
        assert ranked["file"].is_unique and sorted(ranked["rank"]) == list(range(1, len(ranked) + 1))
        assert set(ranked["file"]) | set(skipped["file"]) == set(written)  # nothing lost
        assert not set(ranked["file"]) & set(skipped["file"])
        for key in skipped["file"]:
            assert isinstance(why := skipped.set_index("file").loc[key, "reason"], str) and why
            try:  # the reason is true: this file really cannot be decoded
                imaging.decode(album / names.from_key(key))
            except imaging.UnreadableImage:
                continue
            raise AssertionError(f"{key!r} listed as unreadable ({why}) but it decodes")
        for key in ranked["file"]:
            imaging.decode(album / names.from_key(key))  # and every ranked one does
        assert _snapshot(tmp / "photos") == before

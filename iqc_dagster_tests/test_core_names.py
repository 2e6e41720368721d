"""Names (non-UTF-8, control characters, backslashes), CSV quoting, temporary names, no-detail frames,
DuckDB extension settings: pure core, with property-based tests over names."""

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iqc_dagster.core import dedup, names, ranking, reasons, store
from iqc_dagster.core.files import write_atomic

#: Any file name Linux allows: 1..255 bytes, no "/" and no NUL, not "." or "..".
fs_names = st.binary(min_size=1, max_size=255).map(lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")) \
    .filter(lambda b: b not in (b".", b".."))


@settings(max_examples=300, deadline=None)
@given(fs_names, st.booleans())
def test_keys_are_printable_utf8_and_reversible(raw, album):
    name = os.fsdecode(raw)
    key = names.to_key(name, album=album)
    key.encode("utf-8")  # storable in DuckDB, a partition key, a UTF-8 CSV
    assert not any(ord(c) < 32 or ord(c) == 127 for c in key)
    if album:
        assert "..." not in key  # Dagster refuses it in partition keys
    assert names.from_key(key) == name
    assert os.fsencode(names.from_key(key)) == raw
    assert names.is_key(key, album=album)


@settings(max_examples=200, deadline=None)
@given(fs_names, fs_names)
def test_different_names_never_share_a_key(a, b):
    if a != b:
        assert names.to_key(os.fsdecode(a)) != names.to_key(os.fsdecode(b))


def test_plain_names_are_their_own_key_and_odd_ones_are_readable():
    for n in ("IMG_0001.JPG", "ünïcødé 写真.jpg", "it's a \"quoted\" name.jpg", " lead space", "trail "):
        assert names.to_key(n) == n
    assert names.to_key(os.fsdecode(b"caf\xe9.jpg")) == "caf\\xe9.jpg"
    assert names.to_key("a\rb") == "a\\x0db" and names.to_key("back\\slash") == "back\\\\slash"
    assert names.to_key("Best of...", album=True) == "Best of..\\x2e"
    assert names.display("\x1b[31mred\u202e.jpg") == "\\x1b[31mred\\u202e.jpg"


def test_output_stems_stay_short_and_distinct():
    long_a, long_b = "a" * 240, "a" * 239 + "b"
    for stem in (names.file_stem(long_a), names.file_stem(long_b)):
        assert len(f"{stem}_skipped.csv".encode()) <= 255
    assert names.file_stem(long_a) != names.file_stem(long_b)
    assert names.file_stem(".trip") != names.file_stem("trip") and not names.file_stem(".trip").startswith(".")
    assert names.file_stem("trip") == "trip"


def test_write_atomic_with_a_240_byte_name(tmp_path):
    target = tmp_path / ("é" * 120 + ".csv")  # 244 bytes: ".<name>.XXXX.tmp" would pass 255
    write_atomic(target, b"x")
    assert target.read_bytes() == b"x" and [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("value", ["a\rb.jpg", "a\nb.jpg", "a\r\nb.jpg", "tab\there.jpg", 'q"uote.jpg'])
def test_csv_round_trips_line_breaks_in_values(tmp_path, value):
    df = pd.DataFrame({"file": [value, "plain.jpg"], "final_score": [0.5, 0.25], "rank": [1, 2]})
    p = ranking.write_csv_atomic(df, tmp_path / "x.csv")
    back = pd.read_csv(p)
    assert back["file"].tolist() == [value, "plain.jpg"] and back["rank"].tolist() == [1, 2]


# --- blank and tiny frames --------------------------------------------------------------------------

def _frames():
    rng = np.random.default_rng(3)
    return {"black": np.zeros((300, 400, 3), np.uint8), "white": np.full((300, 400, 3), 255, np.uint8),
            "grey_noise": np.clip(128 + rng.normal(0, 0.3, (300, 400, 3)), 0, 255).astype(np.uint8),
            "one_px": np.full((1, 1, 3), 200, np.uint8),
            "strip": rng.integers(0, 256, (6, 900, 3), dtype=np.uint8)}


def test_no_detail_frames_are_marked():
    f = _frames()
    assert {k: dedup.no_detail(v) for k, v in f.items()} == {
        "black": "blank", "white": "blank", "grey_noise": "blank", "one_px": "tiny", "strip": "tiny"}
    from iqc_dagster_tests.conftest import real_photo

    assert dedup.no_detail(real_photo("coffee")) is None
    assert dedup.no_detail(np.zeros((300, 400, 3), np.uint8) + np.uint8(40)) == "blank"


def test_blank_and_tiny_frames_never_group_unless_identical():
    f = _frames()
    rows = []
    for k, v in f.items():
        rows.append({"file": f"{k}.png", "content_hash": f"h-{k}", "phash": dedup.photo_signature(v)})
    rows.append({"file": "black_copy.png", "content_hash": "h-black", "phash": dedup.photo_signature(f["black"])})
    df = pd.DataFrame(rows)
    df["final_score"] = 0.5
    # and CLIP finds them all alike: still no group
    df["embedding"] = [np.ones(8, np.float32)] * len(df)
    # without the rule, the old hashes of flat frames put them in one group: the test can fail
    old = pd.DataFrame({"file": df["file"], "final_score": 0.5,
                        "phash": [dedup.hashes_hex(dedup.photo_hashes(v)) for v in
                                  [*f.values(), f["black"]]]})
    assert dedup.group_photos(old)["group_size"].max() > 2
    g = dedup.group_photos(df).set_index("file")
    assert g.loc["black.png", "group_id"] == g.loc["black_copy.png", "group_id"]  # byte-identical
    assert g.loc["black.png", "group_size"] == 2
    assert (g.drop(index=["black.png", "black_copy.png"])["group_size"] == 1).all()


def test_blank_frame_ranks_last_with_a_reason():
    ranked = pd.DataFrame({"file": ["black.jpg", "good.jpg", "soft.jpg"], "path": ["/a", "/b", "/c"],
                           "final_score": [0.9, 0.6, 0.2], "rank": [1, 2, 3], "sharpness_norm": [0.9, 0.9, 0.1]})
    out = ranking.demote_no_detail(ranked, {"black.jpg": "blank"})
    assert out["file"].tolist() == ["good.jpg", "soft.jpg", "black.jpg"] and out["rank"].tolist() == [1, 2, 3]
    assert out.set_index("file").loc["black.jpg", "final_score"] == 0.0
    why = reasons.photo_reasons(out).tolist()
    assert why[2] == "- blank frame (no detail)" and "+ sharp" in why[0]


# --- DuckDB --------------------------------------------------------------------------------------

def test_sqlite_file_as_database_is_named_not_opened(tmp_path):
    import sqlite3

    p = tmp_path / "photos.db"
    with sqlite3.connect(p) as c:
        c.execute("CREATE TABLE t (x)")
    msg = store.not_duckdb_message(str(p))
    assert msg and "SQLite" in msg and "IQC_DB" in msg
    assert store.not_duckdb_message(str(tmp_path / "new.duckdb")) is None
    assert store.CONNECTION_CONFIG == {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def test_iqc_connections_never_autoload_extensions(tmp_path):
    from iqc_dagster.defs.resources import IQCDuckDBResource, NotADuckDBFile

    res = IQCDuckDBResource(database=str(tmp_path / "x.duckdb"))
    with res.get_connection() as conn:
        got = dict(conn.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                "('autoinstall_known_extensions', 'autoload_known_extensions')").fetchall())
    assert got == {"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    (tmp_path / "s.db").write_bytes(b"SQLite format 3\x00" + bytes(100))
    with pytest.raises(NotADuckDBFile, match="SQLite"):
        with IQCDuckDBResource(database=str(tmp_path / "s.db")).get_connection():
            pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fs_names, min_size=1, max_size=6, unique_by=lambda b: b.lower()))
def test_scan_lists_every_odd_name_once_and_reads_it(raw_names):
    import tempfile
    from pathlib import Path

    from PIL import Image

    from iqc_dagster.core import imaging, inventory

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
        made = []
        for raw in raw_names:
            base = raw[:250] + b".jpg" if not raw.startswith(b".") else b"x" + raw[:249] + b".jpg"
            img.save(os.path.join(os.fsencode(d), base), format="JPEG")
            made.append(os.fsdecode(base))
        made = sorted(set(made))
        inv = inventory.scan_album(folder, "album")
        assert sorted(inv["path"]) == sorted(names.to_key(n) for n in made)  # each exactly once
        assert (inv["status"] == "ok").all(), inv[["path", "reason"]]
        for key in inv["path"]:
            assert imaging.decode(folder / names.from_key(key)).rgb.shape == (40, 48, 3)

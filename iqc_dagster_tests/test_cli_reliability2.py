"""The CLI on the second round of hostile cases (issue 17): one odd album never sinks a run, outputs never
inside the photos, clear words, escaped names, no library warnings on stderr."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iqc_dagster import cli


def _album(folder, n=2, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(folder / f"p{i}.jpg")
    return folder


def _base(tmp_path):
    return ["--db", str(tmp_path / "iqc.duckdb"), "--output-dir", str(tmp_path / "out"), "--no-clip", "--quiet"]


def test_run_continues_past_a_failing_album_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    root = tmp_path / "photos"
    for a in ("alpha", "broken", "gamma"):
        _album(root / a)
    _album(root / ".thumbnails")
    (root / "empty").mkdir()
    from iqc_dagster import runner

    real = runner.materialize_album

    def flaky(album, settings, **kw):
        if album == "broken":
            raise runner.RunFailed("ranked_photos: disk on fire")
        return real(album, settings, **kw)

    monkeypatch.setattr(runner, "materialize_album", flaky)
    rc = cli.main(["run", "--photo-root", str(root), *_base(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert (tmp_path / "out" / "csvs" / "alpha.csv").exists() and (tmp_path / "out" / "csvs" / "gamma.csv").exists()
    assert "2 album(s) ranked" in out and "1 of 3 album(s) failed" in err and "broken: ranked_photos: disk on fire" in err
    assert "hidden folder(s)" in out and ".thumbnails" in out and "without photos: empty" in out


@pytest.mark.parametrize("inside", ["output", "db"])
def test_run_refuses_outputs_inside_the_photo_root(tmp_path, capsys, inside):
    root = tmp_path / "photos"
    _album(root / "a")
    args = {"output": ["--output-dir", str(root / "out"), "--db", str(tmp_path / "x.duckdb")],
            "db": ["--output-dir", str(tmp_path / "out"), "--db", str(root / "iqc.duckdb")]}[inside]
    rc = cli.main(["run", "--photo-root", str(root), "--no-clip", *args])
    err = capsys.readouterr().err
    assert rc == 2 and "inside the photo root" in err
    assert sorted(p.name for p in root.iterdir()) == ["a"]  # nothing written there


def test_rank_output_naming_its_own_csv_and_an_explicit_album_name(tmp_path, capsys):
    folder = _album(tmp_path / "c1" / "trip")
    own = tmp_path / "out" / "csvs" / "trip.csv"
    own.parent.mkdir(parents=True)
    own.write_text("placeholder\n")
    assert cli.main(["rank", "--input-dir", str(folder), "--output", str(own), *_base(tmp_path)]) == 0
    assert len(pd.read_csv(own)) == 2  # no SameFileError, and the CSV is the ranking
    other = _album(tmp_path / "c2" / "trip", seed=5)
    capsys.readouterr()
    assert cli.main(["rank", "--input-dir", str(other), *_base(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "already stands for the folder" in err and "--album NAME" in err and "Traceback" not in err
    assert cli.main(["rank", "--input-dir", str(other), "--album", "trip from card 2", *_base(tmp_path)]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "csvs" / "trip from card 2.csv")) == 2
    assert pd.read_csv(own)["path"].str.startswith(str(folder)).all()  # the first album kept its rows


def test_rank_hidden_and_oddly_named_folders_and_raw_only_albums(tmp_path, capsys):
    for name in (".hidden trip", " spaced ", "line\nbreak"):
        folder = _album(tmp_path / name)
        assert cli.main(["rank", "--input-dir", str(folder), *_base(tmp_path)]) == 0, capsys.readouterr().err
    raw = tmp_path / "raws"
    raw.mkdir()
    for n in ("a.CR2", "b.NEF", "c.dng"):
        (raw / n).write_bytes(b"raw" * 50)
    capsys.readouterr()
    assert cli.main(["rank", "--input-dir", str(raw), *_base(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ranked 0 photos" in out and "3 unreadable, 3 of them RAW" in out
    skipped = pd.read_csv(tmp_path / "out" / "csvs" / "raws_skipped.csv")
    assert sorted(skipped["file"]) == ["a.CR2", "b.NEF", "c.dng"]
    assert skipped["reason"].str.startswith("RAW file not readable by LibRaw").all()  # garbage bytes


def test_sqlite_database_and_labels_directory_are_one_clear_line(tmp_path, capsys):
    import sqlite3

    folder = _album(tmp_path / "a")
    db = tmp_path / "lib.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE t (x)")
    assert cli.main(["rank", "--input-dir", str(folder), "--db", str(db), "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a SQLite file, not a DuckDB database" in err[0]
    assert cli.main(["tune", "--labels", str(tmp_path), "--photo-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and "does not exist" not in err


def test_terminal_output_is_escaped_and_free_of_library_warnings(tmp_path):
    """As a user runs it: a name with an ANSI escape, a corrupt EXIF block (Pillow's UserWarning) and
    CJK names (matplotlib's missing-glyph warnings) must leave stderr clean and the terminal uncoloured."""
    from iqc_dagster_tests.conftest import real_photo, save_jpeg

    folder = tmp_path / "album"
    good = save_jpeg(real_photo("coffee"), folder / "\x1b[31mred\x1b[0m.jpg").read_bytes()
    junk = b"Exif\x00\x00" + b"II*\x00" + b"\x08\x00\x00\x00" + b"\xff\x7f" + b"\x12" * 64
    app1 = b"\xff\xe1" + (len(junk) + 2).to_bytes(2, "big") + junk
    (folder / "bad_exif.jpg").write_bytes(good[:2] + app1 + good[2:])
    save_jpeg(real_photo("chelsea"), folder / "写真.jpg")
    env = {**os.environ, "IQC_CLIP": "0"}
    env.pop("IQC_DEBUG", None)
    env.pop("PYTHONWARNINGS", None)
    r = subprocess.run([sys.executable, "-m", "iqc_dagster.cli", "rank", "--input-dir", str(folder), "--db",
                        str(tmp_path / "x.duckdb"), "--output-dir", str(tmp_path / "o")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout + r.stderr
    assert "\\x1b[31mred\\x1b[0m.jpg" in r.stdout
    assert "Warning" not in r.stderr and "warnings.warn" not in r.stderr, r.stderr

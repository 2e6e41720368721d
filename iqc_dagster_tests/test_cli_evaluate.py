"""`iqc evaluate`, run as a user would run it (a subprocess) on a CSV of real photos."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iqc_dagster_tests.conftest import real_photo, save_jpeg

HOSTILE = "<b>x'; drop table images;--.jpg"


def iqc(*args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    env.pop("IQC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "iqc_dagster.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def _exif(when: dt.datetime) -> bytes:
    exif = Image.Exif()
    stamp = when.strftime("%Y:%m:%d %H:%M:%S")
    exif.get_ifd(0x8769)[0x9003] = stamp  # DateTimeOriginal
    return exif.tobytes()


@pytest.fixture
def ranked_csv(tmp_path):
    """A ranked CSV (as `iqc rank` writes it, fewer columns) over real photos: an original, a re-encoded
    crop of it, two burst frames two seconds apart, different photos, one with a hostile name."""
    folder = tmp_path / "photos"
    t0 = dt.datetime(2024, 6, 1, 10, 0, 0)
    a = real_photo("astronaut")
    g = real_photo("grace_hopper")
    w = g.shape[1]
    cw = int(w * 0.9)
    pan = int(w * 0.04)  # the camera moved by 4% of the frame: alike, not a near-duplicate
    photos = {
        "astronaut.jpg": (a, t0),
        "astronaut_crop.jpg": (a[40:-40, 40:-40].copy(), t0 + dt.timedelta(hours=1)),
        "frame1.jpg": (g[:, :cw].copy(), t0 + dt.timedelta(hours=2)),
        "frame2.jpg": (g[:, pan:pan + cw].copy(), t0 + dt.timedelta(hours=2, seconds=2)),
        HOSTILE: (real_photo("coffee"), t0 + dt.timedelta(hours=3)),
        "chelsea.jpg": (real_photo("chelsea"), t0 + dt.timedelta(hours=4)),
    }
    for name, (img, when) in photos.items():
        save_jpeg(img, folder / name, quality=80 if "crop" in name else 92, exif=_exif(when))
    names = list(photos)
    df = pd.DataFrame({"file": names, "path": [str(folder / n) for n in names],
                       "final_score": [0.5, 0.8, 0.6, 0.4, 0.9, 0.7],
                       "sharpness_norm": [0.9, 0.2, 0.5, 0.5, 0.8, 0.1],
                       "aesthetic": [0.7, 0.5, 0.6, 0.4, 0.9, 0.2]})
    df = df.sort_values("final_score", ascending=False)
    df["rank"] = np.arange(1, len(df) + 1)
    csv = tmp_path / "holiday.csv"
    df.to_csv(csv, index=False)
    pd.DataFrame({"file": ["bad.jpg"], "reason": ["decode failed"]}).to_csv(tmp_path / "holiday_skipped.csv",
                                                                            index=False)
    return csv


def test_evaluate_prints_metrics_and_writes_report(tmp_path, ranked_csv):
    out = tmp_path / "out"
    r = iqc("evaluate", "--input-csv", str(ranked_csv), "--output-dir", str(out), "--top-k", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    m = json.loads(lines[0])
    assert m["n_ranked"] == 6 and m["n_unreadable"] == 1
    assert m["n_groups"] == 2 and m["n_grouped_photos"] == 4
    assert m["duplicate_fraction"] == pytest.approx(2 / 6)  # astronaut.jpg and frame2.jpg are set aside
    assert m["sharpness_corr"] is not None and m["sharpness_corr_n"] == 6
    folder = out / "reports" / "holiday"
    for name in ["index.html", "top.png", "bottom.png", "hist_final_score.png", "hist_aesthetic.png",
                 "hist_sharpness_norm.png", "evaluated.csv"]:
        assert (folder / name).is_file(), name
    assert str((folder / "index.html").resolve()) in r.stderr
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert HOSTILE not in page and "\\u003cb\\u003ex'; drop table images;--.jpg" in page  # JSON, escaped
    t = pd.read_csv(folder / "evaluated.csv")
    by = t.set_index("file")
    assert by.loc["astronaut.jpg", "duplicate_of"] == "astronaut_crop.jpg"
    assert by.loc["astronaut.jpg", "group_kind"] == "duplicate"
    assert by.loc["frame2.jpg", "group_kind"] == "burst" and by.loc["frame2.jpg", "duplicate_of"] == "frame1.jpg"
    assert "duplicate of astronaut_crop.jpg, lower score" in by.loc["astronaut.jpg", "reasons"]
    assert bool(by.loc[HOSTILE, "is_best_in_group"]) and by.loc[HOSTILE, "group_size"] == 1
    assert list(t["rank"]) == [1, 2, 3, 4, 5, 6]


def test_evaluate_defaults_to_iqc_output_dir(tmp_path, ranked_csv):
    r = iqc("evaluate", "--input-csv", str(ranked_csv), "--album", "renamed", "--top-k", "1",
            env_extra={"IQC_OUTPUT_DIR": str(tmp_path / "env_out")})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "env_out" / "reports" / "renamed" / "index.html").is_file()


@pytest.mark.parametrize("case", ["missing", "directory", "binary", "no_columns", "empty", "no_numbers"])
def test_evaluate_bad_input_is_one_line_error(tmp_path, case):
    target = tmp_path / "x.csv"
    if case == "directory":
        target.mkdir()
    elif case == "binary":
        save_jpeg(real_photo("coffee"), target)
    elif case == "no_columns":
        target.write_text("name,score\na.jpg,0.5\n")
    elif case == "empty":
        target.write_text("")
    elif case == "no_numbers":
        target.write_text("file,path,final_score\na.jpg,/a.jpg,high\n")
    r = iqc("evaluate", "--input-csv", str(target), "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("iqc evaluate: error:")
    if case == "no_columns":
        assert "final_score" in err[0] and "path (or file)" in err[0]


def test_evaluate_again_restores_deleted_thumbnails(tmp_path, ranked_csv):
    import shutil

    from iqc_dagster.core import report

    out = tmp_path / "out"
    args = ("evaluate", "--input-csv", str(ranked_csv), "--output-dir", str(out), "--top-k", "1")
    assert iqc(*args).returncode == 0
    folder = out / "reports" / "holiday"
    names = sorted(p.name for p in (folder / "thumbs").iterdir())
    assert len(names) == 6 and sorted(p.name for p in (folder / "large").iterdir()) == names
    shutil.rmtree(folder / "thumbs")
    (folder / "large" / names[0]).unlink()
    assert len(report.media_status(folder).missing) == 7
    r = iqc(*args)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (folder / "thumbs").iterdir()) == names
    assert sorted(p.name for p in (folder / "large").iterdir()) == names
    assert report.media_status(folder).complete

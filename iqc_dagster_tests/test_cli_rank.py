"""The `iqc` console script, run as a user would run it (a subprocess)."""

import os
import subprocess
import sys

import pandas as pd
import pytest


def iqc(*args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    env.pop("IQC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "iqc_dagster.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_rank_folder_prints_csv_and_top5(tmp_path, photo_root):
    out = tmp_path / "ranked.csv"
    r = iqc("rank", "--input-dir", str(photo_root / "portraits"), "--output", str(out),
            "--db", str(tmp_path / "x.duckdb"), "--output-dir", str(tmp_path / "o"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert str(out.resolve()) in r.stdout and "top 4:" in r.stdout
    df = pd.read_csv(out)
    assert len(df) == 4 and df["rank"].tolist() == [1, 2, 3, 4]
    assert (tmp_path / "o" / "csvs" / "portraits.csv").exists()
    lines = [l for l in r.stdout.splitlines() if l.strip().startswith("1.")]
    assert lines and df["file"][0] in lines[0]


@pytest.mark.parametrize("case", ["missing", "file", "empty"])
def test_rank_bad_input_is_one_line_error(tmp_path, case):
    target = tmp_path / "x"
    if case == "file":
        target.write_text("hi")
    elif case == "empty":
        target.mkdir()
    r = iqc("rank", "--input-dir", str(target), "--db", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("iqc rank: error:")


def test_run_ranks_every_album_under_root(tmp_path, photo_root):
    r = iqc("run", "--quiet", env_extra={"IQC_PHOTO_ROOT": str(photo_root), "IQC_DB": str(tmp_path / "d.duckdb"),
                                          "IQC_OUTPUT_DIR": str(tmp_path / "out")})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "csvs" / "portraits.csv").exists()
    assert (tmp_path / "out" / "csvs" / "travel.csv").exists()
    assert "2 album(s) ranked" in r.stdout
    assert (tmp_path / "out" / "reports" / "travel" / "index.html").is_file()
    assert f"report -> {(tmp_path / 'out' / 'reports' / 'travel' / 'index.html').resolve()}" in r.stdout


def test_run_missing_root_is_one_line_error(tmp_path):
    r = iqc("run", env_extra={"IQC_PHOTO_ROOT": str(tmp_path / "none")})
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_run_skips_empty_albums_and_fails_when_no_photos_at_all(tmp_path, photo_root):
    (photo_root / "empty").mkdir()
    env = {"IQC_PHOTO_ROOT": str(photo_root), "IQC_DB": str(tmp_path / "d.duckdb"),
           "IQC_OUTPUT_DIR": str(tmp_path / "out")}
    r = iqc("run", "--quiet", "--album", "empty", "--album", "travel", env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "skipped 1 album(s) without photos: empty" in r.stdout
    bare = tmp_path / "bare"
    (bare / "a").mkdir(parents=True)
    r = iqc("run", env_extra={**env, "IQC_PHOTO_ROOT": str(bare)})
    assert r.returncode == 2 and "no photos found in any album" in r.stderr and "Traceback" not in r.stderr


def test_rank_refuses_to_write_inside_the_album(tmp_path, photo_root):
    album = photo_root / "travel"
    before = sorted(p.name for p in album.rglob("*"))
    r = iqc("rank", "--input-dir", ".", cwd=album)  # default output/ and data/ would land in the album
    assert r.returncode == 2 and "inside the album" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in album.rglob("*")) == before


def test_rank_output_copy_still_reports_unreadable(tmp_path, photo_root):
    (photo_root / "travel" / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "best.csv"
    r = iqc("rank", "--input-dir", str(photo_root / "travel"), "--output", str(out), "--quiet", "--no-clip",
            "--db", str(tmp_path / "x.duckdb"), "--output-dir", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "(1 unreadable, listed in" in r.stdout and str(out.resolve()) in r.stdout


def test_rerank_restores_deleted_report_thumbnails(tmp_path, photo_root):
    """The review page is reused on an unchanged re-run, but a deleted thumbs/ folder and a deleted
    large/ file are noticed and made again (each photo decoded once for its two files)."""
    args = ("rank", "--input-dir", str(photo_root / "travel"), "--db", str(tmp_path / "x.duckdb"),
            "--output-dir", str(tmp_path / "o"), "--no-clip", "--quiet")
    r = iqc(*args)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "o" / "reports" / "travel"
    thumbs = sorted(p.name for p in (folder / "thumbs").iterdir())
    large = sorted(p.name for p in (folder / "large").iterdir())
    assert len(thumbs) == 4 and thumbs == large
    for name in thumbs:  # the page shows exactly these files
        assert f"thumbs/{name}" in (folder / "index.html").read_text(encoding="utf-8")
    import shutil

    shutil.rmtree(folder / "thumbs")
    (folder / "large" / large[0]).unlink()

    r = iqc(*args)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (folder / "thumbs").iterdir()) == thumbs
    assert sorted(p.name for p in (folder / "large").iterdir()) == large
    from PIL import Image

    with Image.open(folder / "large" / large[0]) as im:
        assert im.format == "JPEG" and max(im.size) <= 1600

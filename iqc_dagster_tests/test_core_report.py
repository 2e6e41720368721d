"""The evaluation report: files exist, PNGs are valid images, the HTML escapes hostile file names."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iqc_dagster.core import dedup, evaluation, report
from iqc_dagster_tests.conftest import real_photo, save_jpeg

HOSTILE = "<b>x'; drop table images;--.jpg"


def _digest(p):
    return hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns


@pytest.fixture
def album(tmp_path):
    folder = tmp_path / "photos"
    files = {
        "astronaut.jpg": real_photo("astronaut"),
        "astronaut_small.jpg": real_photo("astronaut")[::2, ::2].copy(),
        HOSTILE: real_photo("coffee"),
        "chelsea.jpg": real_photo("chelsea"),
        "$x$ math.jpg": real_photo("rocket"),  # matplotlib must not read this as mathtext
    }
    for name, img in files.items():
        save_jpeg(img, folder / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    names = list(files) + ["broken.jpg", "gone.jpg"]  # gone.jpg does not exist
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "file": names,
        "path": [str(folder / n) for n in names],
        "final_score": np.linspace(0.9, 0.2, len(names)),
        "aesthetic": rng.random(len(names)),
        "sharpness_norm": rng.random(len(names)),
        "exposure_norm": [0.8, 0.7, 0.1, np.nan, 0.5, 0.3, 0.2],
        "clipped_highlights": [0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0],
    })
    df["rank"] = np.arange(1, len(df) + 1)
    return folder, df


def test_report_files_exist_and_pngs_are_valid(tmp_path, album):
    folder, df = album
    before = {p.name: _digest(p) for p in folder.iterdir()}
    out = report.report_folder(tmp_path / "output", "my album")
    assert out == tmp_path / "output" / "reports" / "my album"
    files = report.write_report(df, out, album="my album", top_k=3)
    assert files.index == out / "index.html" and files.top == out / "top.png" and files.bottom == out / "bottom.png"
    assert set(files.histograms) == {"final_score", "aesthetic", "sharpness_norm", "exposure_norm"}
    assert files.histograms["final_score"].name == "hist_final_score.png"
    for p in files.all():
        assert p.is_file() and p.stat().st_size > 0
        if p.suffix == ".png":
            with Image.open(p) as im:
                im.verify()
            with Image.open(p) as im:
                assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
    # photos only read
    assert {p.name: _digest(p) for p in folder.iterdir()} == before


def test_html_escapes_hostile_names(tmp_path, album):
    folder, df = album
    files = report.write_report(df, tmp_path / "r", album="<script>alert(1)</script>", top_k=8)
    page = files.index.read_text(encoding="utf-8")
    assert HOSTILE not in page
    assert "<b>x" not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # title and heading
    # the photos' data is JSON in a <script type="application/json">: no "<" can close it
    data = page.split('<script type="application/json" id="iqc-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data
    assert "\\u003cb\\u003ex'; drop table images;--.jpg" in data
    parsed = json.loads(data)
    assert HOSTILE in [p["file"] for p in parsed["photos"]]
    assert parsed["album"] == "<script>alert(1)</script>"
    # links to the photos are percent-encoded file URIs
    assert "%3Cb%3Ex%27%3B%20drop%20table%20images%3B--.jpg" in data
    # relative links to the PNGs beside it; montages linked, not shown again
    assert 'href="top.png"' in page and 'src="hist_final_score.png"' in page and 'src="top.png"' not in page
    # thumbnails are files, not data URIs: one thumbnail and one large copy per readable photo
    assert "data:image" not in page
    readable = [p for p in parsed["photos"] if p["t"]]
    assert len(readable) == 5 and all((files.folder / p["t"]).is_file() and (files.folder / p["l"]).is_file()
                                      for p in readable)
    for p in readable:
        with Image.open(files.folder / p["t"]) as t, Image.open(files.folder / p["l"]) as big:
            assert max(t.size) <= report.GALLERY_THUMB_SIDE and max(big.size) <= report.LARGE_SIDE
            assert max(big.size) >= max(t.size)


def test_unreadable_photos_get_placeholders(tmp_path, album):
    _, df = album
    bad = df[df["file"].isin(["broken.jpg", "gone.jpg"])]
    files = report.write_report(bad, tmp_path / "r", album="bad", top_k=2)
    assert files.top.is_file() and files.bottom.is_file()
    assert report.thumbnail(df.loc[df["file"] == "gone.jpg", "path"].iloc[0]) is None
    assert report.thumbnail(None) is None


def test_empty_table_and_stale_histograms(tmp_path, album):
    _, df = album
    out = tmp_path / "r"
    first = report.write_report(df, out, album="a", top_k=1)
    assert (out / "hist_aesthetic.png").exists()
    second = report.write_report(df.drop(columns=["aesthetic"]), out, album="a", top_k=1)
    assert not (out / "hist_aesthetic.png").exists() and "aesthetic" not in second.histograms
    empty = report.write_report(df.head(0), tmp_path / "e", album="e")
    assert empty.index.is_file() and empty.top.is_file()
    assert first.index == second.index


def test_folder_names_are_safe(tmp_path):
    dots = report.report_folder(tmp_path, "..")
    assert dots.parent == tmp_path / "reports" and dots.name.startswith("_~")
    # names changed to be safe carry a hash: they never share a folder with the name they became
    assert report.report_folder(tmp_path, "_") == tmp_path / "reports" / "_" != dots
    assert report.report_folder(tmp_path, ".trip") != report.report_folder(tmp_path, "trip")
    assert report.report_folder(tmp_path, "../../etc").parent == tmp_path / "reports"
    assert report.safe_name("a/b\\c") == "a_b_c"


def test_evaluate_end_to_end(tmp_path, album):
    _, df = album
    result = evaluation.evaluate(df.drop(columns=["rank"]), tmp_path / "out", "album", n_unreadable=1, top_k=2)
    t = result.table
    assert result.unhashed == 2  # broken.jpg and gone.jpg
    # the half-size copy is grouped with its original; the best pick is the higher score
    a = t[t["file"].isin(["astronaut.jpg", "astronaut_small.jpg"])]
    assert a["group_id"].nunique() == 1 and (a["group_size"] == 2).all()
    assert t.loc[t["file"] == "astronaut_small.jpg", "duplicate_of"].iloc[0] == "astronaut.jpg"
    assert "duplicate of astronaut.jpg, lower score" in t.loc[t["file"] == "astronaut_small.jpg", "reasons"].iloc[0]
    assert "20% of highlights clipped" in t.loc[t["file"] == HOSTILE, "reasons"].iloc[0]
    assert list(t["rank"]) == list(range(1, len(t) + 1))
    assert all(dedup.parse_hashes(h) is not None for h in t["phash"].dropna())
    m = result.metrics
    assert m["n_ranked"] == 7 and m["n_unreadable"] == 1
    assert m["duplicate_fraction"] == pytest.approx(1 / 7)
    assert result.report.index == tmp_path / "out" / "reports" / "album" / "index.html"


def test_long_file_names_are_cut_in_the_middle_not_lost():
    name = "PXL_20240612_183412345_with_a_very_long_name_0042.MP.jpg"
    short = report.short_name(name)
    assert len(short) == 40 and short.startswith("PXL_2024") and short.endswith("0042.MP.jpg") and "…" in short
    assert report.short_name("IMG_0001.jpg") == "IMG_0001.jpg"


def test_why_the_winner_won_and_page_data_helpers():
    w = {"sharpness_norm": 0.9, "exposure_norm": 0.8, "median_luma": 0.45, "eyes_open": 0.9, "aesthetic": 0.5}
    o = {"sharpness_norm": 0.5, "exposure_norm": 0.4, "median_luma": 0.15, "eyes_open": 0.1, "aesthetic": 0.5}
    assert report.why_better(w, o) == ["eyes open", "sharper"]
    assert report.why_better(w, o, max_items=3)[2] == "1.6 stops brighter"
    assert report.why_better(o, o) == ["higher overall score"]
    text = report.json_for_script({"f": "</script><!--\u2028&"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"f": "</script><!--\u2028&"}


def test_top_picks_markdown_is_escaped_and_one_per_group():
    df = pd.DataFrame({"file": ["a|b.jpg", "dup.jpg", "<i>c</i>*.jpg"], "final_score": [0.9, 0.8, 0.7],
                       "rank": [1, 2, 3], "group_id": [1, 1, 2], "group_size": [2, 2, 1],
                       "is_best_in_group": [True, False, True], "reasons": ["+ sharp; + face; - dark", "", ""]})
    md = report.top_picks_markdown(df)
    lines = md.splitlines()
    assert lines[0] == "| rank | score | photo | why |" and len(lines) == 4
    assert "a\\|b\\.jpg" in lines[2] and "+ sharp; + face" not in lines[2] and "\\+ sharp; \\+ face" in lines[2]
    assert "dup" not in md and "<i>" not in md and "&lt;i&gt;" in lines[3]
    assert "no photos" in report.top_picks_markdown(df.head(0))

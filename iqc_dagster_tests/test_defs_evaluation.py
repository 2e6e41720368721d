"""duplicate_groups and evaluation_report inside the album graph."""

import json
import shutil

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from iqc_dagster.core import ranking
from iqc_dagster.runner import materialize_album
from iqc_dagster_tests.conftest import SAMPLES


def _metadata(result, asset):
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def test_groups_mark_best_pick_and_report_is_written(settings, photo_root):
    album = photo_root / "portraits"
    shutil.copy2(SAMPLES / "portraits" / "astronaut_burst.jpg", album)  # a cropped, resized copy
    hostile = "<b>x'; drop table images;--.jpg"
    shutil.copy2(SAMPLES / "travel" / "rocket.jpg", album / hostile)
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_album("portraits", settings, instance=instance)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["report_is_complete"]

    csv = pd.read_csv(f"{settings.output_dir}/csvs/portraits.csv")
    assert list(csv.columns[: len(ranking.CSV_COLUMNS)]) == ranking.CSV_COLUMNS
    assert set(ranking.GROUP_AND_REASON_COLUMNS) <= set(csv.columns)
    by = csv.set_index("file")
    astro = by.loc[["astronaut.jpg", "astronaut_burst.jpg", "astronaut_blurred.jpg"]]
    assert astro["group_id"].nunique() == 1 and (astro["group_size"] >= 3).all()
    best = astro[astro["is_best_in_group"]]
    assert len(best) == 1 and best.index[0] == astro["final_score"].idxmax()
    others = astro[~astro["is_best_in_group"]]
    assert (others["duplicate_of"] == best.index[0]).all()
    assert others["reasons"].str.contains(f"duplicate of {best.index[0]}", regex=False).all()
    assert by.loc["grace_hopper.jpg", "group_id"] != by.loc["astronaut.jpg", "group_id"]
    assert by.loc[hostile, "group_size"] == 1 and bool(by.loc[hostile, "is_best_in_group"])
    assert len(csv) == 6  # duplicates are marked, never dropped

    folder = settings.output_dir + "/reports/portraits"
    html = open(f"{folder}/index.html", encoding="utf-8").read()
    assert hostile not in html and "\\u003cb\\u003ex'; drop table images;--.jpg" in html  # JSON, escaped
    for name in ("top.png", "bottom.png", "hist_final_score.png", "hist_sharpness_norm.png"):
        with open(f"{folder}/{name}", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    md = _metadata(result, "evaluation_report")
    with duckdb.connect(settings.db_path, read_only=True) as c:
        stored = json.loads(c.execute("SELECT metrics FROM album_metrics WHERE album = 'portraits'").fetchone()[0])
    assert stored["n_ranked"] == 6 == md["n_ranked"]
    # the page is linked and the top picks previewed as Markdown (hostile names escaped)
    assert str(md["report"]).endswith("index.html") and str(md["review_page"]).startswith("file://")
    top = str(md["top_picks"])
    assert top.startswith("| rank | score | photo | why |") and hostile not in top and "&lt;b&gt;x" in top
    n_dups = int((~csv["is_best_in_group"]).sum())
    assert stored["duplicate_fraction"] == round(n_dups / 6, 6) or abs(stored["duplicate_fraction"] - n_dups / 6) < 1e-6
    assert np.isclose(stored["score_std"], csv["final_score"].std(ddof=0), atol=1e-5)


def test_hashes_are_cached_with_the_features(settings):
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_album("travel", settings, instance=instance)
        with duckdb.connect(settings.db_path, read_only=True) as c:
            n = c.execute("SELECT count(*) FROM photo_hashes").fetchone()[0]
        second = materialize_album("travel", settings, instance=instance)
    assert n == 4
    assert _metadata(second, "technical_features")["n_computed"] == 0
    assert _metadata(second, "duplicate_groups")["n_photos"] == 4


def test_report_of_an_unchanged_album_is_reused_and_rewritten_after_a_change(settings, photo_root):
    folder = f"{settings.output_dir}/reports/travel"
    with dg.DagsterInstance.ephemeral() as instance:
        first = materialize_album("travel", settings, instance=instance)
        assert _metadata(first, "evaluation_report")["reused"] is False
        import os

        mtime = os.stat(f"{folder}/index.html").st_mtime_ns
        second = materialize_album("travel", settings, instance=instance)
        assert _metadata(second, "evaluation_report")["reused"] is True
        assert os.stat(f"{folder}/index.html").st_mtime_ns == mtime
        shutil.copy2(SAMPLES / "travel" / "rocket.jpg", photo_root / "travel" / "rocket.jpg")
        third = materialize_album("travel", settings, instance=instance)
        assert _metadata(third, "evaluation_report")["reused"] is False
    assert "rocket.jpg" in open(f"{folder}/index.html", encoding="utf-8").read()

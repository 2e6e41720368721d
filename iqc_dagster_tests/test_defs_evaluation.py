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


def test_report_check_fails_on_missing_thumbnails_and_a_rerun_restores_them(settings):
    from iqc_dagster.core import report
    from iqc_dagster.defs import evaluation

    folder = report.report_folder(settings.output_dir, "travel")
    with dg.DagsterInstance.ephemeral() as instance:
        first = materialize_album("travel", settings, instance=instance)
        assert {e.check_name: e.passed for e in first.get_asset_check_evaluations()}["report_is_complete"]
        status = report.media_status(folder)
        assert status.n_photos == 4 and status.complete

        # the user deletes one photo's thumbnail and another's large view
        thumbs = sorted(p.name for p in (folder / "thumbs").iterdir())
        (folder / "thumbs" / thumbs[0]).unlink()
        (folder / "large" / thumbs[1]).unlink()
        untouched = {f"{d}/{n}": (folder / d / n).stat().st_mtime_ns for d in ("thumbs", "large")
                     for n in thumbs[2:]}
        ranked = pd.read_csv(f"{settings.output_dir}/csvs/travel.csv")
        m = {"n_ranked": len(ranked)}
        result = evaluation._report_check(folder, ranked, m)  # the check, on the folder as it is now
        assert not result.passed
        assert result.metadata["n_media_missing"].value == 2
        assert "2 of 4 photo(s) on the page miss 2 thumbs/ or large/ file(s)" in result.metadata["problems"].value
        assert sorted(report.media_status(folder).missing) == [f"large/{thumbs[1]}", f"thumbs/{thumbs[0]}"]

        # the same album run again: inputs unchanged, but the report notices and makes the files again
        second = materialize_album("travel", settings, instance=instance)
    md = _metadata(second, "evaluation_report")
    assert md["reused"] is False and md["media_restored"] == 2
    assert {e.check_name: e.passed for e in second.get_asset_check_evaluations()}["report_is_complete"]
    assert sorted(p.name for p in (folder / "thumbs").iterdir()) == thumbs
    assert sorted(p.name for p in (folder / "large").iterdir()) == thumbs
    # only the two photos that lost a file were decoded again: the others' files were not rewritten
    assert {k: (folder / k).stat().st_mtime_ns for k in untouched} == untouched
    assert report.media_status(folder).complete and evaluation._report_check(folder, ranked, m).passed


def test_report_check_counts_photos_shown_without_a_thumbnail(settings, photo_root):
    """A photo gone between its ranking and the report is on the page as a grey placeholder: the check
    says so (it is a warning: the run goes on)."""
    from iqc_dagster.core import report
    from iqc_dagster.defs import evaluation

    with dg.DagsterInstance.ephemeral() as instance:
        materialize_album("travel", settings, instance=instance)
    ranked = pd.read_csv(f"{settings.output_dir}/csvs/travel.csv")
    (photo_root / "travel" / "chelsea.jpg").unlink()
    folder = report.report_folder(settings.output_dir, "travel")
    report.write_report(ranked, folder, album="travel")
    status = report.media_status(folder)
    assert status.placeholders == ["chelsea.jpg"] and not status.missing
    result = evaluation._report_check(folder, ranked, {"n_ranked": len(ranked)})
    assert not result.passed and "1 photo(s) shown without a thumbnail" in result.metadata["problems"].value

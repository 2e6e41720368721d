"""The partitioned album graph, materialized with dg.materialize on an ephemeral instance, checks included."""

import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from iqc_dagster.core import ranking
from iqc_dagster.runner import RunFailed, materialize_album


def _metadata(result, asset: str) -> dict:
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(asset)]
    assert mats, f"{asset} not materialized"
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def _db_count(settings, sql, params=()):
    with duckdb.connect(settings.db_path, read_only=True) as c:
        return c.execute(sql, list(params)).fetchone()[0]


def test_album_graph_ranks_and_checks_pass(settings):
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_album("portraits", settings, instance=instance)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert {"every_photo_has_features", "scores_finite_in_unit_range", "ranks_are_one_to_n",
            "unreadable_photos_have_reasons"} <= set(checks)
    assert all(checks.values())
    csv = pd.read_csv(f"{settings.output_dir}/csvs/portraits.csv")
    assert list(csv.columns[: len(ranking.CSV_COLUMNS)]) == ranking.CSV_COLUMNS
    assert csv["rank"].tolist() == [1, 2, 3, 4]
    assert csv["final_score"].is_monotonic_decreasing
    pos = dict(zip(csv["file"], csv["rank"]))
    assert pos["astronaut.jpg"] < pos["astronaut_blurred.jpg"]
    assert pos["grace_hopper.jpg"] < pos["grace_hopper_dark.jpg"]
    assert csv["face_present"].isin([0, 1]).all() and csv["face_present"].sum() >= 1
    assert all(p.startswith(settings.photo_root) for p in csv["path"])


def test_rerun_replaces_rows_and_reuses_cached_features(settings, photo_root):
    with dg.DagsterInstance.ephemeral() as instance:
        first = materialize_album("travel", settings, instance=instance)
        assert _metadata(first, "technical_features")["n_computed"] == 4
        second = materialize_album("travel", settings, instance=instance)
        md = _metadata(second, "technical_features")
        assert md["n_computed"] == 0 and md["n_cached"] == 4
        # a new photo: only it is analysed, and nothing is duplicated
        shutil.copy2(photo_root / "portraits" / "astronaut.jpg", photo_root / "travel" / "new.jpg")
        third = materialize_album("travel", settings, instance=instance)
        assert _metadata(third, "technical_features")["n_computed"] == 1
    assert _db_count(settings, "SELECT count(*) FROM photos WHERE album = 'travel'") == 5
    assert _db_count(settings, "SELECT count(*) FROM rankings WHERE album = 'travel'") == 5
    assert len(pd.read_csv(f"{settings.output_dir}/csvs/travel.csv")) == 5


def test_unreadable_photo_is_listed_not_fatal(settings, photo_root):
    (photo_root / "travel" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (photo_root / "travel" / "empty.png").write_bytes(b"")
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_album("travel", settings, instance=instance)
    assert result.success
    assert _metadata(result, "image_inventory")["n_unreadable"] == 2
    csv = pd.read_csv(f"{settings.output_dir}/csvs/travel.csv")
    assert "broken.jpg" not in set(csv["file"]) and len(csv) == 4
    skipped = pd.read_csv(f"{settings.output_dir}/csvs/travel_skipped.csv")
    assert set(skipped["file"]) == {"broken.jpg", "empty.png"}
    assert skipped["reason"].notna().all()


def test_empty_album_gives_empty_ranking(settings, photo_root):
    (photo_root / "empty").mkdir()
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_album("empty", settings, instance=instance)
    assert result.success
    assert len(pd.read_csv(f"{settings.output_dir}/csvs/empty.csv")) == 0


def test_missing_album_folder_fails_with_clear_message(settings):
    with pytest.raises(RunFailed, match="does not exist"):
        materialize_album("nope", settings)


def test_photos_are_never_modified(settings, photo_root):
    import hashlib

    def snapshot():
        return {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
                for p in sorted(photo_root.rglob("*")) if p.is_file()}

    before = snapshot()
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_album("travel", settings, instance=instance)
    assert snapshot() == before

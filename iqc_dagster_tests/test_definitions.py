import dagster as dg

from iqc_dagster.definitions import defs


def test_definitions_load_with_expected_assets_checks_and_sensor():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"image_inventory", "technical_features", "normalized_features", "ranking_weights",
            "ranked_photos"} <= keys
    assert repo.get_sensor_def("album_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    job = defs.resolve_job_def("rank_album_job")
    assert job.partitions_def is not None and job.partitions_def.name == "albums"
    checks = {k.name for k in repo.asset_graph.asset_check_keys}
    assert {"every_photo_has_features", "scores_finite_in_unit_range", "ranks_are_one_to_n"} <= checks
    # every DuckDB writer is in the single-writer pool
    for key in ("image_inventory", "technical_features", "normalized_features", "ranked_photos", "ranking_weights"):
        node = repo.asset_graph.get(dg.AssetKey(key))
        assert node.pools == {"iqc_duckdb"}, key

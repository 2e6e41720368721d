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
    # the short steps that write DuckDB hold the single-writer slot; the long ones (scanning, decoding,
    # CLIP, rendering, Optuna) do not, and write in short transactions
    for key in ("normalized_features", "duplicate_groups", "ranked_photos", "ranking_weights"):
        assert repo.asset_graph.get(dg.AssetKey(key)).pools == {"iqc_duckdb"}, key
    for key in ("image_inventory", "technical_features", "clip_embeddings", "aesthetic_scores",
                "evaluation_report", "tuned_weights"):
        assert not repo.asset_graph.get(dg.AssetKey(key)).pools, key
    # the album job ranks with the weights it materializes: ranking_weights is part of it
    assert dg.AssetKey("ranking_weights") in job.asset_layer.selected_asset_keys


def test_iqc_duckdb_is_the_only_pool_and_the_shipped_dagster_yaml_limits_it():
    """dagster.yaml cannot name a pool, so its default limit of 1 is iqc_duckdb's: no other pool may exist."""
    from pathlib import Path

    import yaml

    from iqc_dagster.defs.resources import INSTANCE_SETTINGS

    repo = defs.get_repository_def()
    pools = set().union(*(repo.asset_graph.get(k).pools or set() for k in repo.asset_graph.get_all_asset_keys()))
    assert pools == {"iqc_duckdb"}
    shipped = Path(__file__).resolve().parents[1] / "dagster.yaml"  # plain `dagster dev` from the repo reads it
    assert yaml.safe_load(shipped.read_text()) == INSTANCE_SETTINGS
    assert INSTANCE_SETTINGS["concurrency"]["pools"]["default_limit"] == 1


def test_clip_settings_are_declared_once():
    """The resource's config fields, the CLI flags and ClipSettings name the same settings."""
    import dataclasses

    from iqc_dagster.cli.common import CLIP_FLAGS
    from iqc_dagster.core.clip import ClipSettings
    from iqc_dagster.defs.resources import ClipResource

    fields = {f.name for f in dataclasses.fields(ClipSettings)}
    assert set(ClipResource.model_fields) - {"models"} == fields
    assert {field for field, _ in CLIP_FLAGS.values()} <= fields
    s = ClipSettings(model="m", batch_size=3, positive_prompts=("p",), precision="fp32")
    assert ClipResource.from_settings(s).settings() == s

"""`iqc ui` prepares a Dagster home whose pool limit queues DuckDB writers of concurrent runs."""

import dagster as dg

from iqc_dagster.cli.ui import prepare_home
from iqc_dagster.defs.resources import DUCKDB_POOL


def test_ui_home_limits_the_duckdb_pool_to_one(tmp_path):
    home = prepare_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        instance.event_log_storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).slot_count == 1
    # an existing dagster.yaml is the user's: never overwritten
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prepare_home(home)
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"

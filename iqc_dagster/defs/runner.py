"""Run the album graph in-process (used by the ``iqc`` CLI and the tests): same assets, same checks."""

import dagster as dg

from iqc_dagster.core.config import Settings
from iqc_dagster.defs.albums import album_assets, album_checks
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import make_resources
from iqc_dagster.defs.weights import ranking_weights


class RunFailed(RuntimeError):
    """A run or a blocking check failed; ``str(exc)`` is a one-line summary."""


def _failure_summary(result: dg.ExecuteInProcessResult) -> str:
    msgs = []
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            err = ev.step_failure_data.error
            msg = (err.message or "").strip().splitlines()
            msgs.append(f"{ev.step_key}: {msg[-1] if msg else 'failed'}")
    for ev in result.get_asset_check_evaluations():
        if not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR:
            msgs.append(f"check {ev.check_name} failed: {dict((k, v.value) for k, v in ev.metadata.items())}")
    return "; ".join(msgs) or "run failed"


def materialize_album(album: str, settings: Settings, *, instance: dg.DagsterInstance | None = None,
                      log_level: str = "INFO", raise_on_error: bool = False) -> dg.ExecuteInProcessResult:
    """Register ``album`` as a partition and materialize its assets (and checks) in this process."""
    own = instance is None
    instance = instance or dg.DagsterInstance.ephemeral()
    try:
        if not instance.has_dynamic_partition(albums_partitions.name, album):
            instance.add_dynamic_partitions(albums_partitions.name, [album])
        result = dg.materialize(
            [*album_assets, ranking_weights, *album_checks],
            selection=dg.AssetSelection.assets(*album_assets),
            partition_key=album,
            instance=instance,
            resources=make_resources(settings),
            raise_on_error=raise_on_error,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            tags={"iqc/album": album},
        )
    finally:
        if own:
            instance.dispose()
    if not result.success:
        raise RunFailed(_failure_summary(result))
    return result

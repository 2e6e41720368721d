"""Run the code location's jobs in this process (the ``iqc`` CLI, ``iqc perf`` and the tests): the jobs
of :mod:`iqc_dagster.definitions`, with resources from :class:`~iqc_dagster.core.config.Settings`,
progress lines on stderr and a one-line summary when a run fails.
"""

import logging
import re
import sys
import time
import uuid

import dagster as dg

from iqc_dagster.core import clip as clipcore
from iqc_dagster.core import names
from iqc_dagster.core.config import Settings
from iqc_dagster.defs import keys
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import make_resources
from iqc_dagster.definitions import build_defs


class RunFailed(RuntimeError):
    """A run or a blocking check failed; ``str(exc)`` is a one-line summary."""


def _failure_summary(result: dg.ExecuteInProcessResult) -> str:
    msgs = []
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            err = ev.step_failure_data.error
            while err.cause is not None:  # the user's exception, not Dagster's wrapper around it
                err = err.cause
            msg = (err.message or "").strip().splitlines()
            text = re.sub(r"^[\w.]+(Error|Exception|Locked|Failed|Failure): ", "", msg[0] if msg else "failed")
            msgs.append(f"{ev.step_key}: {text}")
    for ev in result.get_asset_check_evaluations():
        if not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR:
            msgs.append(f"check {ev.check_name} failed: {dict((k, v.value) for k, v in ev.metadata.items())}")
    return names.display("; ".join(msgs) or "run failed")


class ConsoleLines:
    """Prints a run's own messages to stderr as plain lines, from the run's events (``EventLogEntry``):
    the assets' log messages at ``level`` or above; no framework events, and nothing logged for a step
    that never started (Dagster's "Dependencies for step ... Not executing." for each step downstream of a
    failure: the summary says it once)."""

    def __init__(self, level: str = "INFO", stream=None):
        self.level = logging.getLevelName(level.upper())
        self.stream = stream
        self.started: set[str] = set()

    def __call__(self, entry: dg.EventLogEntry) -> None:
        if entry.is_dagster_event:
            if entry.dagster_event_type == dg.DagsterEventType.STEP_START:
                self.started.add(entry.step_key)
            return
        if entry.step_key is not None and entry.step_key not in self.started:
            return
        level = entry.level if isinstance(entry.level, int) else logging.getLevelName(str(entry.level).upper())
        if not isinstance(level, int) or level < self.level:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(entry.timestamp))
        # names.display: a file name holding "\x1b[31m" must not recolour the terminal
        line = names.display(f"[{entry.step_key or 'run'}] {entry.user_message}")
        print(f"{stamp} {logging.getLevelName(level)} {line}", file=self.stream or sys.stderr, flush=True)


#: Dagster's own console logger stays silent: ConsoleLines prints what the user needs.
_QUIET_DAGSTER = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def run_job(job_name: str, settings: Settings, *, partition_key: str | None = None,
            instance: dg.DagsterInstance | None = None, log_level: str = "INFO", ops_config: dict | None = None,
            tags: dict | None = None, raise_on_error: bool = False,
            clip_models: clipcore.ModelCache | None = None) -> dg.ExecuteInProcessResult:
    """Execute the code location's job ``job_name`` in this process with the resources of ``settings``;
    raises :class:`RunFailed` with a one-line summary when a step or blocking check fails.
    ``clip_models``: a CLIP model cache shared with other runs of this process (default: one per run)."""
    own = instance is None
    instance = instance or dg.DagsterInstance.ephemeral()
    try:
        job = build_defs(make_resources(settings, clip_models)).resolve_job_def(job_name)
        run_config: dict = dict(_QUIET_DAGSTER)
        if ops_config:
            run_config["ops"] = ops_config
        run_id = str(uuid.uuid4())
        instance.add_event_listener(run_id, ConsoleLines(log_level))
        result = job.execute_in_process(partition_key=partition_key, instance=instance, run_id=run_id,
                                        raise_on_error=raise_on_error, run_config=run_config, tags=tags)
    finally:
        if own:
            instance.dispose()
    if not result.success:
        raise RunFailed(_failure_summary(result))
    return result


def materialize_album(album: str, settings: Settings, *, instance: dg.DagsterInstance | None = None,
                      log_level: str = "INFO", raise_on_error: bool = False,
                      clip_models: clipcore.ModelCache | None = None) -> dg.ExecuteInProcessResult:
    """Register ``album`` as a partition and run ``rank_album_job`` for it (its assets, the ranking
    weights and the checks) in this process.

    Progress goes to stderr as plain lines (the assets' own messages at ``log_level``); a failed step or
    blocking check raises :class:`RunFailed` with a one-line summary.
    """
    own = instance is None
    instance = instance or dg.DagsterInstance.ephemeral()
    try:
        if not instance.has_dynamic_partition(albums_partitions.name, album):
            instance.add_dynamic_partitions(albums_partitions.name, [album])
        return run_job(keys.RANK_ALBUM_JOB, settings, partition_key=album, instance=instance, log_level=log_level,
                       tags={"iqc/album": album}, raise_on_error=raise_on_error, clip_models=clip_models)
    finally:
        if own:
            instance.dispose()


def materialize_tuning(settings: Settings, config: dict, *, instance: dg.DagsterInstance | None = None,
                       log_level: str = "INFO") -> dg.ExecuteInProcessResult:
    """Run ``tune_weights_job`` (the ``tuned_weights`` asset, what ``iqc tune`` runs); raises ``RunFailed``."""
    return run_job(keys.TUNE_WEIGHTS_JOB, settings, instance=instance, log_level=log_level,
                   ops_config={"tuned_weights": {"config": config}})


def tuning_summary(result: dg.ExecuteInProcessResult) -> dict:
    """The summary dict (the JSON ``iqc tune`` prints) of the last ``tuned_weights`` materialization."""
    import json

    mats = [m for m in result.get_asset_materialization_events() if m.asset_key == keys.TUNED_WEIGHTS]
    if not mats:
        raise RuntimeError("tuned_weights was not materialized")
    value = mats[-1].materialization.metadata["summary"].value
    return json.loads(json.dumps(value))

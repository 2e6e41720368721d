"""Run the album graph in-process (used by the ``iqc`` CLI and the tests): same assets, same checks."""

import logging
import re
import sys

import dagster as dg

from iqc_dagster.core import names
from iqc_dagster.core.config import Settings
from iqc_dagster.defs.analysis import album_assets, album_checks
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import make_resources
from iqc_dagster.defs.ranking import ranking_weights


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


@dg.logger(config_schema={"log_level": dg.Field(str, default_value="INFO")},
           description="Plain progress lines for the terminal: the assets' own messages, no framework events "
                       "or stack traces (a failure is summarised once, at the end, by the caller).")
def iqc_console(init_context) -> logging.Logger:
    level = init_context.logger_config["log_level"].upper()
    lg = logging.getLogger(f"iqc.console.{id(init_context)}")
    lg.setLevel(level)
    lg.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_user_messages_only)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    lg.handlers = [handler]
    return lg


def _user_messages_only(record: logging.LogRecord) -> bool:
    meta = getattr(record, "dagster_meta", None) or {}
    if meta.get("dagster_event") is not None:
        return False  # framework events (STEP_START, STEP_FAILURE with its stack trace, ...)
    if str(meta.get("orig_message", "")).startswith("Dependencies for step"):
        return False  # "... failed. Not executing." for each downstream step: the summary says it once
    # names.display: a file name holding "\x1b[31m" must not recolour the terminal
    record.msg = names.display(f"[{meta.get('step_key') or 'run'}] {meta.get('orig_message', record.getMessage())}")
    record.args = ()
    return True


def run_in_process(job_name: str, assets: list, selection, settings: Settings, *, checks=(),
                   partition_key: str | None = None, instance: dg.DagsterInstance | None = None,
                   log_level: str = "INFO", ops_config: dict | None = None, tags: dict | None = None,
                   raise_on_error: bool = False) -> dg.ExecuteInProcessResult:
    """Execute ``selection`` of ``assets`` in this process with the iqc resources and terminal logger;
    raises :class:`RunFailed` with a one-line summary when a step or blocking check fails."""
    own = instance is None
    instance = instance or dg.DagsterInstance.ephemeral()
    try:
        defs = dg.Definitions(
            assets=assets, asset_checks=list(checks),
            jobs=[dg.define_asset_job(job_name, selection=selection)],
            resources=make_resources(settings), loggers={"iqc_console": iqc_console},
            executor=dg.in_process_executor)
        run_config: dict = {"loggers": {"iqc_console": {"config": {"log_level": log_level}}}}
        if ops_config:
            run_config["ops"] = ops_config
        result = defs.resolve_job_def(job_name).execute_in_process(
            partition_key=partition_key, instance=instance, raise_on_error=raise_on_error,
            run_config=run_config, tags=tags)
    finally:
        if own:
            instance.dispose()
    if not result.success:
        raise RunFailed(_failure_summary(result))
    return result


def materialize_album(album: str, settings: Settings, *, instance: dg.DagsterInstance | None = None,
                      log_level: str = "INFO", raise_on_error: bool = False) -> dg.ExecuteInProcessResult:
    """Register ``album`` as a partition and materialize its assets (and checks) in this process.

    Progress goes to stderr as plain lines (the assets' own messages at ``log_level``); a failed step or
    blocking check raises :class:`RunFailed` with a one-line summary.
    """
    own = instance is None
    instance = instance or dg.DagsterInstance.ephemeral()
    try:
        if not instance.has_dynamic_partition(albums_partitions.name, album):
            instance.add_dynamic_partitions(albums_partitions.name, [album])
        return run_in_process("iqc_album", [*album_assets, ranking_weights], dg.AssetSelection.assets(*album_assets),
                              settings, checks=album_checks, partition_key=album, instance=instance,
                              log_level=log_level, tags={"iqc/album": album}, raise_on_error=raise_on_error)
    finally:
        if own:
            instance.dispose()

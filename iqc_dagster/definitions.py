"""The iqc code location: every module of :mod:`iqc_dagster.defs` (one per pipeline stage) loaded with
``dg.load_from_defs_folder``, the resources from the environment, and the in-process executor.

Load it with ``dagster dev`` (reads ``[tool.dagster]`` in pyproject.toml), ``iqc ui``, or
``dagster asset materialize -m iqc_dagster.definitions ...``. :func:`build_defs` builds the same
definitions with other resources (the in-process runner, :mod:`iqc_dagster.runner`, uses its jobs).
"""

import functools
from pathlib import Path

import dagster as dg

from iqc_dagster.defs.resources import make_resources


@functools.cache
def stage_defs() -> dg.Definitions:
    """The assets, checks, jobs and sensor found in ``iqc_dagster/defs/`` (``[tool.dg.project]`` in
    pyproject.toml names that folder)."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


def build_defs(resources: dict | None = None, loggers: dict | None = None) -> dg.Definitions:
    """The code location with ``resources`` (default: :func:`~iqc_dagster.defs.resources.make_resources`
    from the environment) and ``loggers``."""
    return dg.Definitions.merge(stage_defs(), dg.Definitions(
        resources=resources if resources is not None else make_resources(), loggers=loggers,
        executor=dg.in_process_executor))


defs = build_defs()

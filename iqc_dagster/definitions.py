"""The iqc code location: merges the per-domain definitions and runs everything in-process by default.

Load it with ``dagster dev`` (reads ``[tool.dagster]`` in pyproject.toml), ``iqc ui``, or
``dagster asset materialize -m iqc_dagster.definitions ...``.
"""

import dagster as dg

from iqc_dagster.defs.albums import album_assets, album_checks, rank_album_job
from iqc_dagster.defs.benchmark import benchmark_assets
from iqc_dagster.defs.resources import make_resources
from iqc_dagster.defs.sensors import album_sensor
from iqc_dagster.defs.tuning import tuning_assets
from iqc_dagster.defs.weights import ranking_weights
from iqc_dagster.defs.xmp import export_xmp_job, xmp_assets

defs = dg.Definitions(
    assets=[*album_assets, ranking_weights, *tuning_assets, *benchmark_assets, *xmp_assets],
    asset_checks=album_checks,
    jobs=[rank_album_job, export_xmp_job],
    sensors=[album_sensor],
    resources=make_resources(),
    executor=dg.in_process_executor,
)

"""The unpartitioned ``ranking_weights`` asset: the fusion weights every album ranking uses."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import fusion, store
from iqc_dagster.defs.resources import DUCKDB_POOL, db


def current_weights(conn) -> fusion.Weights:
    """The weights a ranking made now would use: the documented defaults until tuning exists."""
    return fusion.Weights(values=dict(fusion.DEFAULT_WEIGHTS), source="default")


@dg.asset(
    pool=DUCKDB_POOL, group_name="weights", kinds={"python", "duckdb"},
    description="Fusion weights used by ranked_photos: the seed's defaults (aesthetic .35, sharpness .35, "
                "exposure .2, contrast .1, faces .05) until tuned weights exist.",
)
def ranking_weights(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with db(duckdb) as conn:
        w = current_weights(conn)
        store.save_weights(conn, w.weights_id, w.source, w.values)
    context.log.info(f"ranking weights ({w.source}): {w.values}")
    return dg.MaterializeResult(metadata={
        "weights": dg.MetadataValue.json(w.values), "source": w.source, "weights_id": w.weights_id})

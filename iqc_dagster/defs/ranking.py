"""The unpartitioned ``ranking_weights`` asset: the fusion weights every album ranking uses."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import fusion, store, tuning
from iqc_dagster.defs.resources import DUCKDB_POOL, db


def current_weights(conn) -> fusion.Weights:
    """The weights a ranking made now would use.

    The latest ``tuned_weights`` run (``iqc tune`` / the ``tuned_weights`` asset) when its held-out
    agreement is not below the defaults' on the same held-out pairs (source ``tuned:<study>``);
    otherwise — never tuned, or the latest tuning did worse held-out — the documented defaults
    (source ``default``). See :func:`iqc_dagster.core.tuning.accepted_weights`.
    """
    tuned = tuning.accepted_weights(conn)
    if tuned is not None:
        return tuned
    return fusion.Weights(values=dict(fusion.DEFAULT_WEIGHTS), source="default")


@dg.asset(
    pool=DUCKDB_POOL, group_name="weights", kinds={"python", "duckdb"},
    deps=[dg.AssetKey("tuned_weights")],
    description="Fusion weights used by ranked_photos: the latest tuned_weights when their held-out "
                "agreement is not below the defaults', else the seed's defaults (aesthetic .35, "
                "sharpness .35, exposure .2, contrast .1, faces .05).",
)
def ranking_weights(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with db(duckdb) as conn:
        w = current_weights(conn)
        store.save_weights(conn, w.weights_id, w.source, w.values)
        latest = tuning.latest_row(conn)
    context.log.info(f"ranking weights ({w.source}): {w.values}")
    metadata = {"weights": dg.MetadataValue.json(w.values), "source": w.source, "weights_id": w.weights_id}
    if latest is not None:
        metadata["latest_tuning"] = dg.MetadataValue.json({
            "study": latest["study"], "weights_id": latest["weights_id"], "objective": latest["objective"],
            "heldout_default": latest["heldout_default"], "heldout_tuned": latest["heldout_tuned"],
            "used": w.source.startswith("tuned:")})
    return dg.MaterializeResult(metadata=metadata)

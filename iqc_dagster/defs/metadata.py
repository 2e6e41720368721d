"""Metadata helpers shared by the stage modules: Dagster's standard table metadata and markdown tables."""

from collections.abc import Mapping

import dagster as dg
import pandas as pd

_TYPES = {"b": "bool", "i": "int", "u": "int", "f": "float", "M": "timestamp", "m": "interval"}


def md_table(df: pd.DataFrame, limit: int | None = 10, empty: str = "_none_", index: bool = False) -> dg.MetadataValue:
    """The first ``limit`` rows (all with None) as a markdown table, or ``empty`` when there are none."""
    rows = df if limit is None else df.head(limit)
    return dg.MetadataValue.md(rows.to_markdown(index=index) if not df.empty else empty)


def table_metadata(df: pd.DataFrame, descriptions: Mapping[str, str] | None = None) -> dict:
    """``dagster/row_count`` and ``dagster/column_schema`` of a table an asset wrote (shown by the UI)."""
    descriptions = descriptions or {}
    columns = [dg.TableColumn(str(c), _TYPES.get(df[c].dtype.kind, "string"), description=descriptions.get(c))
               for c in df.columns]
    return {"dagster/row_count": dg.MetadataValue.int(len(df)),
            "dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns))}


def clip_status_metadata(source) -> dict:
    """What the CLIP assets and checks say about the model: computed / off / skipped, and why."""
    status = {"ready": "computed", "off": "off"}.get(source.status, "skipped")
    md = {"status": status, "message": source.message(), "model_requested": source.requested,
          "resolve_ms": round(source.seconds * 1000, 1)}
    if source.ready:
        md.update(model_id=source.model_id, model_path=dg.MetadataValue.path(str(source.path)),
                  preprocessing=source.preprocess.describe())
    else:
        md.update(reason=source.reason)
        if source.fix:
            md["how_to_enable"] = source.fix
    return md

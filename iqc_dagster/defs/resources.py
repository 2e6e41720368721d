"""Resources: where the photos, database and outputs are (environment variables, overridable in config)."""


import contextlib
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import inventory, store
from iqc_dagster.core.config import Settings

#: Every asset that writes to DuckDB runs in this pool; its limit is 1 (see dagster.yaml / README),
#: so two runs never hold the single-writer DuckDB file at the same time.
DUCKDB_POOL = "iqc_duckdb"


class IQCSettings(dg.ConfigurableResource):
    """Paths used by the pipeline. Defaults come from IQC_PHOTO_ROOT and IQC_OUTPUT_DIR."""

    photo_root: str
    output_dir: str

    def album_dir(self, album: str) -> Path:
        return inventory.album_dir(self.photo_root, album)

    def csv_path(self, album: str) -> Path:
        return Path(self.output_dir) / "csvs" / f"{album}.csv"


@contextlib.contextmanager
def db(duckdb: DuckDBResource):
    """A DuckDB connection with the schema ensured, always closed afterwards (also on error)."""
    path = Path(duckdb.database)
    if duckdb.database != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.get_connection() as conn:
        try:
            store.ensure_schema(conn)
            yield conn
        finally:
            conn.close()


def make_resources(settings: Settings | None = None) -> dict:
    settings = settings or Settings.from_env()
    return {
        "iqc": IQCSettings(photo_root=settings.photo_root, output_dir=settings.output_dir),
        "duckdb": DuckDBResource(database=settings.db_path),
    }

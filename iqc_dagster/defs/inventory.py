"""Stage 1, per album: ``image_inventory`` — every file of the album folder, and its check.

The scan (listing, probing and hashing new or changed files) runs outside the DuckDB pool; the rows go
in with one short write.
"""

import os
import time

import dagster as dg
from dagster_duckdb import DuckDBResource

from iqc_dagster.core import analysis, inventory, names, store
from iqc_dagster.defs import keys
from iqc_dagster.defs.metadata import md_table, table_metadata
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import IQCSettings, db

UNREADABLE_CHECK = dg.AssetCheckSpec(
    "unreadable_photos_have_reasons", asset=keys.IMAGE_INVENTORY,
    description="Unreadable photos are counted and each has a reason; they are never fatal.")


def _unreadable_check(bad) -> dg.AssetCheckResult:
    missing = bad[bad["reason"].isna() | (bad["reason"].astype(str).str.len() == 0)]
    return dg.AssetCheckResult(
        check_name=UNREADABLE_CHECK.name, passed=missing.empty, severity=dg.AssetCheckSeverity.WARN,
        metadata={"n_unreadable": len(bad), "n_without_reason": len(missing)})


@dg.asset(
    key=keys.IMAGE_INVENTORY, partitions_def=albums_partitions, group_name=keys.ALBUMS_GROUP,
    kinds={"python", "duckdb"}, check_specs=[UNREADABLE_CHECK],
    description="Every photo file in the album: size, format, EXIF orientation and capture time, content "
                "hash, and status ok/unreadable with a reason. Unchanged files (same size and mtime) are "
                "not re-read.",
)
def image_inventory(context: dg.AssetExecutionContext, iqc: IQCSettings,
                    duckdb: DuckDBResource) -> dg.MaterializeResult:
    album = context.partition_key
    folder = iqc.album_dir(album)
    if not folder.is_dir():
        raise dg.Failure(description=f"album folder {names.display(folder)} does not exist (photo root: "
                                     f"{names.display(iqc.photo_root)})")
    folder_key = names.to_key(str(folder))
    with db(duckdb) as conn:
        known = store.album_folder(conn, album)
        if known and known != folder_key and os.path.isdir(names.from_key(known)):
            # two folders of one name (c1/trip, c2/trip): never let the second replace the first's rows
            raise dg.Failure(description=(
                f"the album name {names.display(album)!r} already stands for the folder {names.display(known)} "
                f"in this database, and {names.display(folder)} has the same name: rank it under another name "
                f"(iqc rank --album NAME) or with another --db and --output-dir"))
        store.save_album_folder(conn, album, folder_key)
        previous = store.album_photos(conn, album)
    t0 = time.monotonic()
    df = inventory.scan_album(folder, album, previous, scanned_at=store.now(),
                              progress=analysis.throttled(context.log.info, label=f"inventory {album}"))
    with db(duckdb) as conn:
        store.replace_album_rows(conn, "photos", album, df)
    bad = df[inventory.unreadable(df)]  # a RAW kept as a JPEG's companion is not unreadable
    for row in bad.itertuples():
        context.log.warning(f"unreadable: {names.display(row.path)}: {row.reason}")
    context.log.info(f"{album}: {len(df)} files, {len(df) - len(bad)} readable, {len(bad)} unreadable "
                     f"({time.monotonic() - t0:.1f}s)")
    return dg.MaterializeResult(metadata={
        **table_metadata(df),
        "album_dir": dg.MetadataValue.path(str(folder)),
        "n_files": len(df),
        "n_ok": int((df["status"] == "ok").sum()),
        "n_unreadable": len(bad),
        "unreadable": md_table(bad[["path", "reason"]], 20),
    }, check_results=[_unreadable_check(bad)])

"""The album sensor: registers a partition for each new album folder, requests a run when an album
changes, and removes the partitions of album folders that are gone.

Each tick costs one listing and one ``stat`` per folder of the library, not per photo: an album whose
folders did not change is not looked into (:func:`iqc_dagster.core.inventory.folder_state`). Its photos
are stat'ed (:func:`~iqc_dagster.core.inventory.album_fingerprint`) only when a folder changed, and, as
a backstop for photos rewritten in place under the same name, for one album per tick whose last full
look is older than :data:`RESCAN_AFTER_S`.
"""

import json
import time

import dagster as dg

from iqc_dagster.core import inventory
from iqc_dagster.defs.jobs import rank_album_job
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import IQCSettings

#: Seconds after which an album's photos are stat'ed again even though no folder of it changed.
RESCAN_AFTER_S = 600
#: Albums looked into for that backstop per tick (oldest look first), so a tick stays cheap.
RESCANS_PER_TICK = 1


def _read_cursor(cursor: str | None) -> tuple[int, dict[str, dict]]:
    """``(seq, {album: {"dirs", "files", "at"}})``; cursors of older versions (a fingerprint per album)
    are read as albums whose folders must be looked at again."""
    state = json.loads(cursor) if cursor else {}
    if "albums" not in state:  # oldest cursor: {album: fingerprint}
        state = {"seq": 0, "albums": state}
    albums = {a: (v if isinstance(v, dict) else {"dirs": None, "files": v, "at": 0.0})
              for a, v in state["albums"].items()}
    return int(state.get("seq", 0)), albums


@dg.sensor(job=rank_album_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Watches the photo root: a new album folder becomes a partition of 'albums' and is "
                       "ranked; an album whose photos change (added, removed, renamed; edited in place: "
                       f"within {RESCAN_AFTER_S // 60} min per album) is ranked again; the partition of an "
                       "album folder that is gone is removed.")
def album_sensor(context: dg.SensorEvaluationContext, iqc: IQCSettings) -> dg.SensorResult | dg.SkipReason:
    try:
        albums = inventory.list_albums(iqc.root_dir())
    except inventory.AlbumError as exc:
        return dg.SkipReason(str(exc))
    seq, seen = _read_cursor(context.cursor)
    seq += 1  # makes run keys unique when an album returns to an earlier state
    known = set(context.instance.get_dynamic_partitions(albums_partitions.name))
    now = time.time()
    due = sorted((a for a in albums if a in seen and now - seen[a].get("at", 0.0) >= RESCAN_AFTER_S),
                 key=lambda a: seen[a].get("at", 0.0))[:RESCANS_PER_TICK]
    requests, cursor, looked = [], {}, 0
    for album in albums:
        prev = seen.get(album)
        try:  # the folder may vanish (or become unreadable) between the listing and here
            folder = iqc.album_dir(album)
            dirs = inventory.folder_state(folder)
            if prev is None or prev.get("dirs") != dirs or album in due:
                files, at = inventory.album_fingerprint(folder), now
                looked += 1
            else:
                files, at = prev["files"], prev.get("at", now)
        except (OSError, inventory.AlbumError) as exc:
            context.log.info(f"album {album!r} vanished or is unreadable during this tick: {exc}")
            continue
        cursor[album] = {"dirs": dirs, "files": files, "at": at}
        if album not in known or prev is None or prev["files"] != files:
            requests.append(dg.RunRequest(partition_key=album, run_key=f"{album}@{files}#{seq}"))
    new = [a for a in cursor if a not in known]
    gone = sorted(known - set(cursor))  # folder removed or renamed (or vanished during this tick)
    partition_requests = ([albums_partitions.build_add_request(new)] if new else []) + (
        [albums_partitions.build_delete_request(gone)] if gone else [])
    if not requests and not partition_requests:
        summary = f"no new, changed or removed albums under {iqc.photo_root} ({len(albums)} known)"
        if not looked:
            return dg.SkipReason(summary)
        return dg.SensorResult(skip_reason=summary, cursor=json.dumps({"seq": seq, "albums": cursor}, sort_keys=True))
    if gone:
        context.log.info(f"removing the partitions of {len(gone)} album(s) whose folder is gone: {', '.join(gone)}")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=partition_requests,
        cursor=json.dumps({"seq": seq, "albums": cursor}, sort_keys=True),
    )


"""The album sensor: registers a partition for each new album folder and requests a run when an album changes."""


import json

import dagster as dg

from iqc_dagster.core import inventory
from iqc_dagster.defs.analysis import rank_album_job
from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import IQCSettings


@dg.sensor(job=rank_album_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Watches the photo root: a new album folder becomes a partition of 'albums' and is "
                       "ranked; an album whose photos change (added, edited, removed) is ranked again.")
def album_sensor(context: dg.SensorEvaluationContext, iqc: IQCSettings) -> dg.SensorResult | dg.SkipReason:
    try:
        albums = inventory.list_albums(iqc.root_dir())
    except inventory.AlbumError as exc:
        return dg.SkipReason(str(exc))
    state = json.loads(context.cursor) if context.cursor else {}
    if "albums" not in state:  # cursor of an older version: {album: fingerprint}
        state = {"seq": 0, "albums": state}
    seen: dict[str, str] = state["albums"]
    seq = int(state.get("seq", 0)) + 1  # makes run keys unique when an album returns to an earlier state
    known = set(context.instance.get_dynamic_partitions(albums_partitions.name))
    new = [a for a in albums if a not in known]
    requests, cursor = [], {}
    for album in albums:
        fp = inventory.album_fingerprint(iqc.album_dir(album))
        cursor[album] = fp
        if seen.get(album) != fp or album in new:
            requests.append(dg.RunRequest(partition_key=album, run_key=f"{album}@{fp}#{seq}"))
    if not requests and not new:
        return dg.SkipReason(f"no new or changed albums under {iqc.photo_root} ({len(albums)} known)")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[albums_partitions.build_add_request(new)] if new else [],
        cursor=json.dumps({"seq": seq, "albums": cursor}, sort_keys=True),
    )

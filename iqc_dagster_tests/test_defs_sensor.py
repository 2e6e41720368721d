import shutil

import dagster as dg

from iqc_dagster.defs.partitions import albums_partitions
from iqc_dagster.defs.resources import IQCSettings
from iqc_dagster.defs.sensors import album_sensor


def _tick(instance, root, cursor=None):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                  resources={"iqc": IQCSettings(photo_root=str(root), output_dir="unused")})
    return album_sensor(ctx)


def _apply(instance, result):
    for req in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))


def test_sensor_registers_new_albums_and_reruns_changed_ones(photo_root):
    with dg.DagsterInstance.ephemeral() as instance:
        r1 = _tick(instance, photo_root)
        assert isinstance(r1, dg.SensorResult)
        added = [k for req in r1.dynamic_partitions_requests for k in req.partition_keys]
        assert sorted(added) == ["portraits", "travel"]
        assert sorted(r.partition_key for r in r1.run_requests) == ["portraits", "travel"]
        _apply(instance, r1)
        assert sorted(instance.get_dynamic_partitions(albums_partitions.name)) == ["portraits", "travel"]

        r2 = _tick(instance, photo_root, r1.cursor)
        assert isinstance(r2, dg.SkipReason)

        shutil.copy2(photo_root / "travel" / "coffee.jpg", photo_root / "travel" / "coffee2.jpg")
        (photo_root / "new_album").mkdir()
        shutil.copy2(photo_root / "travel" / "coffee.jpg", photo_root / "new_album" / "c.jpg")
        r3 = _tick(instance, photo_root, r1.cursor)
        assert sorted(r.partition_key for r in r3.run_requests) == ["new_album", "travel"]
        assert [k for req in r3.dynamic_partitions_requests for k in req.partition_keys] == ["new_album"]


def test_sensor_skips_when_photo_root_missing(tmp_path):
    with dg.DagsterInstance.ephemeral() as instance:
        r = _tick(instance, tmp_path / "nowhere")
    assert isinstance(r, dg.SkipReason)


def test_sensor_notices_renames_and_restores(photo_root):
    import os

    with dg.DagsterInstance.ephemeral() as instance:
        r1 = _tick(instance, photo_root)
        _apply(instance, r1)
        src = photo_root / "travel" / "coffee.jpg"
        os.rename(src, photo_root / "travel" / "renamed.jpg")  # same size and mtime
        r2 = _tick(instance, photo_root, r1.cursor)
        assert [r.partition_key for r in r2.run_requests] == ["travel"]
        os.rename(photo_root / "travel" / "renamed.jpg", src)  # back to the first state
        r3 = _tick(instance, photo_root, r2.cursor)
        assert [r.partition_key for r in r3.run_requests] == ["travel"]
        assert r3.run_requests[0].run_key != r1.run_requests[[r.partition_key for r in r1.run_requests].index("travel")].run_key

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


def test_sensor_looks_at_folders_not_photos_when_nothing_changed(photo_root, monkeypatch):
    from iqc_dagster.core import inventory

    with dg.DagsterInstance.ephemeral() as instance:
        r1 = _tick(instance, photo_root)
        _apply(instance, r1)
        calls = []
        real = inventory.album_fingerprint
        monkeypatch.setattr(inventory, "album_fingerprint", lambda f: calls.append(f) or real(f))
        assert isinstance(_tick(instance, photo_root, r1.cursor), dg.SkipReason)
        assert calls == []  # no photo of an unchanged album was stat'ed
        (photo_root / "travel" / "sub").mkdir()
        shutil.copy2(photo_root / "travel" / "coffee.jpg", photo_root / "travel" / "sub" / "c.jpg")
        r3 = _tick(instance, photo_root, r1.cursor)
        assert [r.partition_key for r in r3.run_requests] == ["travel"]
        assert [p.name for p in calls] == ["travel"]  # only the album whose folders changed


def test_sensor_catches_a_photo_rewritten_in_place_by_the_periodic_look(photo_root, monkeypatch):
    import json
    import os

    from iqc_dagster.defs import sensors

    with dg.DagsterInstance.ephemeral() as instance:
        r1 = _tick(instance, photo_root)
        _apply(instance, r1)
        photo = photo_root / "portraits" / "astronaut.jpg"
        folder_mtime = (photo_root / "portraits").stat().st_mtime_ns
        photo.write_bytes(photo.read_bytes() + b"\0")  # same name, new content: no folder changes
        os.utime(photo_root / "portraits", ns=(folder_mtime, folder_mtime))
        assert isinstance(_tick(instance, photo_root, r1.cursor), dg.SkipReason)  # not due yet
        state = json.loads(r1.cursor)
        for a in state["albums"].values():
            a["at"] -= sensors.RESCAN_AFTER_S + 1
        r3 = _tick(instance, photo_root, json.dumps(state))
        assert [r.partition_key for r in r3.run_requests] == ["portraits"]


def test_sensor_removes_the_partition_of_a_vanished_album(photo_root):
    with dg.DagsterInstance.ephemeral() as instance:
        r1 = _tick(instance, photo_root)
        _apply(instance, r1)
        shutil.rmtree(photo_root / "travel")
        r2 = _tick(instance, photo_root, r1.cursor)
        assert not r2.run_requests
        deletes = [k for req in r2.dynamic_partitions_requests if isinstance(req, dg.DeleteDynamicPartitionsRequest)
                   for k in req.partition_keys]
        assert deletes == ["travel"]


def test_a_folder_vanishing_during_the_tick_does_not_fail_it(photo_root, monkeypatch):
    from iqc_dagster.core import inventory

    real = inventory.list_albums

    def listing_then_gone(root):
        albums = real(root)
        shutil.rmtree(photo_root / "travel")  # removed between the listing and the look into it
        return albums

    monkeypatch.setattr(inventory, "list_albums", listing_then_gone)
    with dg.DagsterInstance.ephemeral() as instance:
        r = _tick(instance, photo_root)
    assert [r.partition_key for r in r.run_requests] == ["portraits"]
    assert [k for req in r.dynamic_partitions_requests for k in req.partition_keys] == ["portraits"]

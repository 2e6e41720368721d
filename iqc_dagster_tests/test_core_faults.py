"""Broken and odd files: each is either decoded sensibly or reported with a reason, never a crash."""

import numpy as np
import pytest

from iqc_dagster.core import imaging, inventory
from iqc_dagster_tests import faults


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "album"
    return folder, faults.build(folder)


def test_scan_then_decode_classifies_every_file(corpus):
    folder, expected = corpus
    inv = inventory.scan_album(folder, "album")
    assert sorted(inv["path"]) == sorted(expected)  # nothing missed; the folder loop is not followed
    outcome = {}
    for row in inv.itertuples():
        if row.status != "ok":
            assert row.reason, row.path
            outcome[row.path] = False
            continue
        try:
            d = imaging.decode(folder / row.path)
            assert d.rgb.dtype == np.uint8 and d.rgb.ndim == 3 and d.rgb.shape[2] == 3
            outcome[row.path] = True
        except imaging.UnreadableImage as exc:
            assert str(exc)
            outcome[row.path] = False
    assert outcome == expected


def test_decompression_bomb_is_refused_without_allocating(corpus):
    folder, _ = corpus
    with pytest.raises(imaging.UnreadableImage, match="too large"):
        imaging.probe(folder / "bomb.png")


def test_special_formats_decode_to_sensible_pixels(corpus):
    folder, _ = corpus
    ref = imaging.decode(folder / "plain.jpg").rgb.astype(float)
    cmyk = imaging.decode(folder / "cmyk.jpg").rgb.astype(float)
    assert np.abs(cmyk - ref).mean() < 12  # colours survive the CMYK round trip
    rot = imaging.decode(folder / "rotated.jpg").rgb.astype(float)
    assert rot.shape == ref.shape and np.abs(rot - ref).mean() < 6  # scored upright
    grey16 = imaging.decode(folder / "sixteen_bit.png").rgb
    assert 40 < grey16.mean() < 200  # scaled from 16 bits, not saturated
    heic = imaging.decode(folder / "iphone.heic")
    assert heic.rgb.shape[:2] == (427, 640)


def test_photo_deleted_after_inventory_is_unreadable_not_fatal(corpus):
    folder, _ = corpus
    (folder / "plain.jpg").unlink()
    with pytest.raises(imaging.UnreadableImage, match="disappeared"):
        imaging.decode(folder / "plain.jpg")


def test_permission_denied_is_a_reason(corpus, monkeypatch):
    folder, _ = corpus
    # CI runs as root, where chmod 000 does not stop reads; simulate the OS refusing the open instead.
    import PIL.Image

    def deny(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(PIL.Image, "open", deny)
    with pytest.raises(imaging.UnreadableImage, match="permission denied"):
        imaging.probe(folder / "plain.jpg")


def test_corrupt_exif_block_never_escapes_as_another_error(tmp_path):
    from iqc_dagster_tests.conftest import real_photo, save_jpeg

    good = save_jpeg(real_photo("coffee"), tmp_path / "good.jpg").read_bytes()
    junk = b"Exif\x00\x00" + b"II*\x00" + b"\x08\x00\x00\x00" + b"\xff\x7f" + b"\x12" * 64
    app1 = b"\xff\xe1" + (len(junk) + 2).to_bytes(2, "big") + junk
    bad = tmp_path / "bad_exif.jpg"
    bad.write_bytes(good[:2] + app1 + good[2:])
    try:
        d = imaging.decode(bad)
    except imaging.UnreadableImage as exc:  # acceptable: a reason, not a crash
        assert str(exc)
    else:
        assert d.rgb.shape == (400, 600, 3)  # pixels intact, orientation treated as upright
    imaging.probe(bad)  # the header is still described

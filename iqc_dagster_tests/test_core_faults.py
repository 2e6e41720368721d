"""Broken and odd files: each is either decoded sensibly or reported with a reason, never a crash."""

import os

import numpy as np
import pytest

from iqc_dagster.core import imaging, inventory, names
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
            d = imaging.decode(folder / names.from_key(row.path))  # the stored key names the real file
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


# --- round 2 (issue 17) -------------------------------------------------------------------------

def test_round_two_bad_files_have_true_reasons(corpus):
    folder, _ = corpus
    inv = inventory.scan_album(folder, "album").set_index("path")
    for name, why in faults.REASONS.items():
        assert inv.loc[name, "status"] == "unreadable", name
        assert why in inv.loc[name, "reason"], (name, inv.loc[name, "reason"])
    assert "PNG" in inv.loc["bad_crc.png", "reason"]  # a damaged photo, not "not an image"


@pytest.mark.parametrize("name", ["fifo.jpg", "socket.jpg", "zeros.jpg"])
def test_non_regular_files_are_never_opened(corpus, monkeypatch, name):
    folder, _ = corpus
    import builtins

    real_open = builtins.open

    def guarded(p, *a, **k):
        assert os.path.basename(os.fspath(p)) != name, f"{name} was opened"
        return real_open(p, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)
    for call in (imaging.probe, imaging.decode):
        with pytest.raises(imaging.UnreadableImage, match="not a regular file"):
            call(folder / name)


def test_non_photo_formats_are_refused_without_ghostscript(corpus, monkeypatch):
    folder, _ = corpus
    from PIL import EpsImagePlugin

    def no_gs(*a, **k):
        raise AssertionError("Ghostscript would have run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", no_gs)
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    for name, what in (("postscript.jpg", "EPS"), ("document.jpg", "PDF")):
        for call in (imaging.probe, imaging.decode):
            with pytest.raises(imaging.UnreadableImage, match=f"not a photo: {what}"):
                call(folder / name)


def test_new_extensions_decode(corpus):
    folder, _ = corpus
    for name in ("phone.jfif", "modern.avif"):
        d = imaging.decode(folder / name)
        assert d.rgb.shape == (128, 128, 3) and d.rgb.std() > 10


def test_album_of_only_raw_files_lists_each(tmp_path):
    for n in ("A.CR2", "b.nef", "c.ARW", "d.dng", "e.raf", "f.orf", "g.rw2", "h.cr3", "i.pef", "j.srw"):
        (tmp_path / n).write_bytes(b"raw" * 100)
    inv = inventory.scan_album(tmp_path, "raw")
    assert len(inv) == 10 and (inv["status"] == "unreadable").all()
    # LibRaw reads them now: garbage bytes are not a RAW format it knows, and the reason says so
    assert inv["reason"].str.startswith("RAW file not readable by LibRaw").all()


def test_unreadable_sub_folder_is_reported(tmp_path, monkeypatch):
    from iqc_dagster_tests.conftest import real_photo, save_jpeg

    save_jpeg(real_photo("coffee")[::4, ::4].copy(), tmp_path / "a.jpg")
    save_jpeg(real_photo("coffee")[::4, ::4].copy(), tmp_path / "locked" / "hidden_from_us.jpg")
    # CI runs as root, where mode 000 does not stop reads: make the OS refuse to list the folder
    real_scandir = os.scandir

    def scandir(p="."):
        if os.path.basename(os.fspath(p)) == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(p))
        return real_scandir(p)

    monkeypatch.setattr(os, "scandir", scandir)
    inv = inventory.scan_album(tmp_path, "al").set_index("path")
    assert inv.loc["a.jpg", "status"] == "ok"
    assert inv.loc["locked/", "status"] == "unreadable"
    assert "folder cannot be read" in inv.loc["locked/", "reason"] and "Permission denied" in inv.loc["locked/", "reason"]


def test_float_tiff_in_unit_range_and_nan(corpus):
    folder, _ = corpus
    import warnings

    from iqc_dagster_tests.conftest import real_photo

    ref = real_photo("camera").astype(float)
    d = imaging.decode(folder / "float01.tif")
    assert abs(d.rgb[..., 0].mean() - ref.mean()) < 1.5  # not near-black (was 0.002 of the range)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning on NaN fails here
        n = imaging.decode(folder / "float_nan.tif")
    assert (n.rgb[:40, :40] == 0).all() and abs(n.rgb[40:, 40:, 0].mean() - ref[40:, 40:].mean()) < 1.5


def _colourfulness(rgb):
    r, g, b = (rgb[..., i].astype(float) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


@pytest.mark.parametrize("name", ["iphone_p3.jpg", "adobe_rgb.jpg"])
def test_icc_profiles_are_converted_to_srgb(corpus, monkeypatch, name):
    from iqc_dagster.core import colour
    from iqc_dagster_tests.conftest import real_photo

    folder, _ = corpus
    srgb = real_photo("coffee")
    d = imaging.decode(folder / name).rgb
    assert abs(_colourfulness(d) - _colourfulness(srgb)) < 0.03 * _colourfulness(srgb)
    assert np.abs(d.astype(float) - srgb).mean() < 4  # JPEG quality 92 alone costs about 2.5
    monkeypatch.setattr(colour, "to_srgb", lambda im: None)  # what the decode did before: much duller
    raw = imaging.decode(folder / name).rgb
    assert _colourfulness(raw) < 0.9 * _colourfulness(srgb)
    assert np.abs(raw.astype(float) - srgb).mean() > 6


def test_srgb_profile_and_no_profile_cost_nothing(tmp_path, monkeypatch):
    from PIL import Image, ImageCms

    from iqc_dagster.core import colour
    from iqc_dagster_tests.conftest import real_photo

    img = Image.fromarray(real_photo("coffee")[::4, ::4].copy())
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img.save(tmp_path / "srgb.jpg", icc_profile=srgb)
    img.save(tmp_path / "none.jpg")
    applied = []
    real = ImageCms.applyTransform
    monkeypatch.setattr(ImageCms, "applyTransform", lambda im, t, *a: applied.append(im.size) or real(im, t, *a))
    a = imaging.decode(tmp_path / "srgb.jpg").rgb
    b = imaging.decode(tmp_path / "none.jpg").rgb
    assert np.array_equal(a, b)
    # only the one-off test grid of the sRGB profile was transformed, never the photo's pixels
    assert applied == [(32, 16)]
    imaging.decode(tmp_path / "srgb.jpg")
    assert applied == [(32, 16)]  # cached per profile
    assert colour.transform_for(srgb, "RGB") is None
    assert colour.to_srgb(img) is None  # no profile: nothing to do


def test_broken_profile_is_ignored_not_fatal(tmp_path):
    from PIL import Image

    from iqc_dagster_tests.conftest import real_photo

    Image.fromarray(real_photo("coffee")[::4, ::4].copy()).save(tmp_path / "junk.jpg", icc_profile=b"junk" * 40)
    assert imaging.decode(tmp_path / "junk.jpg").rgb.shape == (100, 150, 3)


def test_evaluate_never_opens_a_fifo(corpus):
    """``iqc evaluate`` on a CSV whose path points at a FIFO used to hang forever."""
    import threading

    import pandas as pd

    from iqc_dagster.core import evaluation, report

    folder, _ = corpus
    df = pd.DataFrame({"file": ["fifo.jpg", "plain.jpg"], "path": [str(folder / "fifo.jpg"), str(folder / "plain.jpg")],
                       "final_score": [0.4, 0.6]})
    done = {}

    def work():
        done["table"], done["unhashed"] = evaluation.with_hashes_and_times(df)
        done["thumb"] = report.thumbnail(folder / "fifo.jpg")

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "hung on the FIFO"
    assert done["unhashed"] == 1 and done["thumb"] is None

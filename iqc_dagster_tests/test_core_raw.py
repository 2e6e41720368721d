"""Camera RAW files through LibRaw: DNGs written by the tests (iqc_dagster/bench/dng.py), with and
without an embedded preview, upright by their orientation, RAW + JPEG pairs scored once."""

import shutil

import numpy as np
import pytest

from iqc_dagster.core import imaging, inventory, raw
from iqc_dagster.bench import dng
from iqc_dagster_tests.conftest import save_jpeg


@pytest.fixture(scope="module")
def scene():
    return dng.scene(1600, 1200)


def _close(a, b, tol=12.0):
    """Mean absolute difference of two images of the same shape, in grey levels."""
    return float(np.abs(a.astype(float) - b.astype(float)).mean()) <= tol


def test_dng_with_a_full_size_preview_decodes_from_the_preview(tmp_path, scene):
    p = dng.write_dng(tmp_path / "a.dng", scene, preview=scene)
    d = imaging.decode(p)
    # exactly as a JPEG of the preview's size: DCT-scaled to 1/2 (1600 -> 800), quality from its table
    assert d.fine.shape == (600, 800, 3) and d.reduction == 2 and d.rgb.shape == (600, 800, 3)
    assert 85 <= d.jpeg_quality <= 95
    ref = imaging.decode(save_jpeg(scene, tmp_path / "ref.jpg", quality=90))
    assert _close(d.rgb, ref.rgb, 2.0)


def test_dng_without_a_preview_is_demosaiced_at_half_size(tmp_path, scene):
    p = dng.write_dng(tmp_path / "a.dng", scene)
    d = imaging.decode(p)
    assert d.fine.shape == (600, 800, 3) and d.reduction == 2 and np.isnan(d.jpeg_quality)
    assert (d.source_width, d.source_height) == (1600, 1200)
    small = scene.reshape(600, 2, 800, 2, 3).mean(axis=(1, 3))
    # colours and layout survive the mosaic (LibRaw's tone curve differs from the scene's: loose bound)
    assert np.corrcoef(d.rgb.mean(axis=2).ravel(), small.mean(axis=2).ravel())[0, 1] > 0.9


def test_small_preview_is_not_used(tmp_path, scene):
    p = dng.write_dng(tmp_path / "a.dng", scene, preview=scene[::4, ::4].copy())  # 400 px < view size
    d = imaging.decode(p)
    assert np.isnan(d.jpeg_quality) and d.fine.shape == (600, 800, 3)


@pytest.mark.parametrize("orientation", range(2, 9))
def test_raw_orientation_table_matches_the_exif_transposes_of_other_photos(orientation):
    from PIL import Image

    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    expected = np.asarray(Image.fromarray(a).transpose(imaging._TRANSPOSE[orientation]))
    assert np.array_equal(raw._TURN[orientation](a), expected)


@pytest.mark.parametrize("with_preview", [True, False])
def test_orientation_turns_raw_photos_upright(tmp_path, scene, with_preview):
    p = dng.write_dng(tmp_path / "a.dng", scene, preview=scene if with_preview else None, orientation=6)
    info = imaging.probe(p)
    assert info.orientation == 6 and (info.width, info.height) == (1600, 1200) and info.format == "DNG"
    d = imaging.decode(p)
    assert d.rgb.shape == (800, 600, 3) and (d.source_width, d.source_height) == (1200, 1600)
    upright = np.rot90(scene, -1)[::2, ::2]
    assert np.corrcoef(d.rgb.mean(axis=2).ravel(), upright.mean(axis=2).ravel())[0, 1] > 0.9


def test_probe_reads_capture_time_and_exif_fields(tmp_path, scene):
    p = dng.write_dng(tmp_path / "a.dng", scene[:64, :64].copy(), captured="2023:07:08 09:10:11",
                      exposure_bias=-1.3, subject_distance=2.5)
    assert imaging.probe(p).captured_at.isoformat() == "2023-07-08T09:10:11"
    f = raw.exif_fields(p)
    assert f.exposure_bias == pytest.approx(-1.3) and f.subject_distance == pytest.approx(2.5)
    assert f.make == "IQC" and f.model == "Test Camera"


def test_damaged_and_foreign_raw_files_have_true_reasons(tmp_path, scene):
    good = dng.write_dng(tmp_path / "good.dng", scene)
    data = good.read_bytes()
    (tmp_path / "cut.dng").write_bytes(data[:len(data) // 3])
    (tmp_path / "text.nef").write_bytes(b"not a raw file at all" * 20)
    inv = inventory.scan_album(tmp_path, "a").set_index("path")
    assert inv.loc["good.dng", "status"] == "ok" and inv.loc["good.dng", "format"] == "DNG"
    assert inv.loc["text.nef", "reason"].startswith("RAW file not readable by LibRaw")
    # a truncated file: the header parses, the pixels are not there
    if inv.loc["cut.dng", "status"] == "ok":
        with pytest.raises(imaging.UnreadableImage, match="RAW"):
            imaging.decode(tmp_path / "cut.dng")
    else:
        assert "RAW" in inv.loc["cut.dng", "reason"]


def test_raw_plus_jpeg_is_one_photo(tmp_path, scene):
    dng.write_dng(tmp_path / "IMG_1.DNG", scene, preview=scene)
    save_jpeg(scene, tmp_path / "IMG_1.JPG")
    dng.write_dng(tmp_path / "IMG_2.dng", scene)  # RAW only
    save_jpeg(scene[::2, ::2].copy(), tmp_path / "IMG_3.jpg")  # a small JPEG: the RAW is the better source
    dng.write_dng(tmp_path / "IMG_3.dng", scene)
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy2(tmp_path / "IMG_1.JPG", sub / "IMG_2.jpg")  # another folder: no pair
    inv = inventory.scan_album(tmp_path, "a").set_index("path")
    assert inv.loc["IMG_1.DNG", "status"] == raw.COMPANION_STATUS and "IMG_1.JPG" in inv.loc["IMG_1.DNG", "reason"]
    assert inv.loc["IMG_1.JPG", "status"] == "ok"
    assert inv.loc["IMG_3.jpg", "status"] == raw.COMPANION_STATUS and inv.loc["IMG_3.dng", "status"] == "ok"
    assert inv.loc["IMG_2.dng", "status"] == "ok" and inv.loc["sub/IMG_2.jpg", "status"] == "ok"
    assert raw.companions_of(inv.reset_index()) == {"IMG_1.JPG": ["IMG_1.DNG"], "IMG_3.dng": ["IMG_3.jpg"]}
    # a re-scan reuses the rows (no re-hash) and keeps the pairs
    again = inventory.scan_album(tmp_path, "a", previous=inv.reset_index()).set_index("path")
    assert (again["status"] == inv["status"]).all()


def test_bench_raw_scenario_measures_all_three_decodes(tmp_path):
    from iqc_dagster.bench import perf

    folder = perf.make_raw_album(tmp_path / "raw", 1, width=1600, height=1200)
    r = perf.raw_decode_cost(folder)
    assert r["n_photos"] == 1 and r["jpeg_ms"] > 0 and r["dng_preview_ms"] > 0 and r["dng_no_preview_ms"] > 0
    assert r["dng_preview_mb"] > r["jpeg_mb"]  # the mosaic is in the file, and is not decoded


def test_a_pair_whose_primary_failed_to_decode_is_scored_from_the_other_file(tmp_path, scene):
    dng.write_dng(tmp_path / "IMG_1.DNG", scene, preview=scene)
    save_jpeg(scene, tmp_path / "IMG_1.JPG")
    inv = inventory.scan_album(tmp_path, "a")
    assert dict(zip(inv["path"], inv["status"])) == {"IMG_1.DNG": raw.COMPANION_STATUS, "IMG_1.JPG": "ok"}
    # the analysis could not decode the JPEG (a truncated copy whose header still parses): it marks it
    inv.loc[inv["path"] == "IMG_1.JPG", ["status", "reason"]] = ["unreadable", "decode failed: truncated"]
    again = inventory.scan_album(tmp_path, "a", previous=inv)
    assert dict(zip(again["path"], again["status"])) == {"IMG_1.DNG": "ok", "IMG_1.JPG": raw.COMPANION_STATUS}
    third = inventory.scan_album(tmp_path, "a", previous=again)  # and it stays so: no flip-flop
    assert dict(zip(third["path"], third["status"])) == {"IMG_1.DNG": "ok", "IMG_1.JPG": raw.COMPANION_STATUS}
    # the ranked CSV lists the scored file with its companion, as the inventory marked them
    assert raw.companions_of(third) == {"IMG_1.DNG": ["IMG_1.JPG"]}

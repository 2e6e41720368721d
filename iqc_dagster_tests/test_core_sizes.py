"""Ranking quality on photo files of real sizes, through the path ``iqc rank`` runs.

Every test here writes JPEG/PNG files to disk and ranks them with :func:`benchmark.rank_folder`
(inventory -> one decode -> features -> calibrated scores -> fusion), which is checked against ``iqc rank``
itself in ``test_rank_folder_is_what_iqc_rank_computes``. The large photos are real camera photographs
from Debian's lomiri-wallpapers-16.04 (installed by .ci/run), resized by area reduction only.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iqc_dagster.bench import benchmark, degrade
from iqc_dagster.core import imaging
from iqc_dagster.core.features import _signals
from iqc_dagster.core.features import noise as noise_feature
from iqc_dagster_tests.conftest import large_photo, real_photo, save_jpeg


def _at(img: np.ndarray, long_side: int) -> np.ndarray:
    out, up = benchmark.resize_to(img, long_side)
    assert not up, "test photos are made by area reduction only"
    return out


def _noisy(img: np.ndarray, sigma: float, seed: int = 7) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(img.shape, dtype=np.float32) * sigma
    return np.clip(img.astype(np.float32) + n + 0.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def bridge() -> np.ndarray:
    return large_photo("bridge")  # 4352 x 2448, a camera photo


@pytest.fixture(scope="module")
def dandelions() -> np.ndarray:
    return large_photo("dandelions")  # 5312 x 2988


# ------------------------------------------------------------------------------------------ decoding

@pytest.mark.parametrize("long_side", [97, 700, 767, 1024, 1535, 1536, 1600, 2047, 3001, 4000, 6144])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_decode_never_returns_more_pixels_than_the_source(tmp_path, long_side, fmt):
    w, h = long_side, max(1, round(long_side * 0.62))
    grad = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * np.ones((h, 1, 3), np.float32)
    img = (grad * 0.5 + _noisy(np.full((h, w, 3), 64, np.uint8), 10) * 0.5).astype(np.uint8)
    p = tmp_path / f"x.{fmt.lower()}"
    Image.fromarray(img).save(p, format=fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 1}))
    d = imaging.decode(p)
    for arr in (d.fine, d.rgb):
        assert arr.shape[0] <= h and arr.shape[1] <= w
    assert d.rgb.shape[0] <= d.fine.shape[0] and d.rgb.shape[1] <= d.fine.shape[1]
    assert max(d.rgb.shape[:2]) == min(imaging.MAX_SIDE, max(d.fine.shape[:2]))
    assert d.reduction in (1, 2, 4) and d.reduction == imaging.reduction_for(long_side)
    assert abs(d.fine.shape[1] - w / d.reduction) <= 1 and abs(d.fine.shape[0] - h / d.reduction) <= 1
    if d.reduction > 1:
        assert max(d.fine.shape[:2]) >= imaging.FINE_MIN_SIDE
    for side in (64, 256, 512, 4096):  # the viewing sizes the features read are never enlarged either
        g = d.gray_at(side)
        assert g.shape[0] <= d.fine.shape[0] and g.shape[1] <= d.fine.shape[1]


def test_decode_upright_portrait_from_exif_at_dct_scale(tmp_path, bridge):
    img = _at(bridge, 3000)  # landscape pixels, stored with "rotate 90 degrees clockwise to display"
    exif = Image.Exif()
    exif[0x0112] = 6
    p = save_jpeg(img, tmp_path / "p.jpg", quality=92, exif=exif.tobytes())
    d = imaging.decode(p)
    assert d.source_height > d.source_width and d.fine.shape[0] > d.fine.shape[1]
    assert d.reduction == 2 and d.fine.shape[:2] == (img.shape[1] // 2, img.shape[0] // 2)
    upright = cv2.resize(np.ascontiguousarray(np.rot90(img, -1)), d.fine.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(d.fine.astype(int) - upright.astype(int)).mean() < 4


@pytest.mark.parametrize("fmt,long_side", [("JPEG", 3200), ("PNG", 3200), ("JPEG", 1600)])
def test_fine_pixels_keep_white_noise_white(tmp_path, fmt, long_side):
    """DCT scaling and the integer box average divide white noise's sigma by the factor and keep it white,
    so the estimate on the fine pixels is exact and its view sigma follows the source's size."""
    h = long_side * 2 // 3
    sigma = 16.0
    grey = _noisy(np.full((h, long_side, 1), 120, np.uint8), sigma)  # the same noise in R, G, B: luma sigma 16
    img = np.repeat(grey, 3, axis=2)
    p = tmp_path / f"n.{fmt.lower()}"
    Image.fromarray(img).save(p, format=fmt, **({"quality": 98, "subsampling": 0} if fmt == "JPEG" else {}))
    d = imaging.decode(p)
    est = _signals.cached_noise_sigma(d)
    assert est == pytest.approx(sigma / d.reduction, rel=0.15)
    view = noise_feature.view_sigma(est, d.source_long_side, d.fine_long_side)
    assert view == pytest.approx(sigma * 1024 / long_side, rel=0.15)


# ------------------------------------------------------------------------------ orderings, real path

def _rank(folder) -> pd.DataFrame:
    return benchmark.rank_folder(folder).set_index("file")


@pytest.mark.parametrize("long_side", [1600, 4000])
def test_noise_and_jpeg_q10_rank_below_the_clean_photo(tmp_path, bridge, dandelions, long_side):
    for name, photo in (("bridge", bridge), ("dandelions", dandelions)):
        img = _at(photo, long_side)
        save_jpeg(img, tmp_path / f"{name}_clean.jpg", quality=95)
        save_jpeg(_noisy(img, 12), tmp_path / f"{name}_noise.jpg", quality=95)  # visible at 100%
        save_jpeg(degrade.camera_noise(img, 2, seed=3), tmp_path / f"{name}_camera.jpg", quality=95)
        save_jpeg(img, tmp_path / f"{name}_q10.jpg", quality=10)
    r = _rank(tmp_path)
    for name in ("bridge", "dandelions"):
        clean = r.loc[f"{name}_clean.jpg", "final_score"]
        for bad in ("noise", "camera", "q10"):
            assert r.loc[f"{name}_{bad}.jpg", "final_score"] < clean, (name, bad, long_side)
        assert r.loc[f"{name}_noise.jpg", "noise_norm"] < r.loc[f"{name}_clean.jpg", "noise_norm"]
        assert r.loc[f"{name}_q10.jpg", "blockiness_norm"] < r.loc[f"{name}_clean.jpg", "blockiness_norm"]


@pytest.mark.parametrize("long_side", [640, 1024])
def test_camera_noise_in_a_small_file_ranks_below_the_clean_photo(tmp_path, bridge, long_side):
    """A web-export-sized file is decoded in full, so camera noise keeps its correlation over neighbouring
    pixels: the noise estimate must still see it, and the detail it adds must not lift the sharpness.
    (Scenes where the scale-invariance estimate before ``mad1`` missed these levels. The mildest level is
    a near tie on some scenes; dandelions, whose clipped sky the noise speckles, has a test of its own.)"""
    photos = {"bridge": _at(bridge, long_side), "dragonfly": _at(large_photo("dragonfly"), long_side),
              "gravel": np.repeat(real_photo("gravel")[..., None], 3, axis=2),  # texture everywhere, 512 px
              "moon": np.repeat(real_photo("moon")[..., None], 3, axis=2)}  # flat: noise is its detail
    for name, img in photos.items():
        save_jpeg(img, tmp_path / f"{name}_clean.jpg", quality=95)
        for level in (2, 3):
            noisy = degrade.camera_noise(img, level, seed=5)
            save_jpeg(noisy, tmp_path / f"{name}_camera{level}.jpg", quality=95)
    r = _rank(tmp_path)
    for name in photos:
        clean = r.loc[f"{name}_clean.jpg"]
        for level in (2, 3):
            noisy = r.loc[f"{name}_camera{level}.jpg"]
            assert noisy["final_score"] < clean["final_score"], (name, level, long_side)
            assert noisy["noise_sigma"] > clean["noise_sigma"], (name, level, long_side)
        assert r.loc[f"{name}_camera3.jpg", "sharpness_norm"] < clean["sharpness_norm"], name


def test_a_downscaled_copy_of_dense_texture_keeps_its_score(tmp_path):
    """lomiri's `life` (a field of flowers) at 1600 px is decoded at half scale; its 2/3 downscale, 1067 px,
    is decoded in full, where texture that fills most of the frame used to read as noise (sigma 2.1,
    score 0.040 lower: ``mad2``). The robust estimate now reads the frame's least textured tiles."""
    img = _at(large_photo("life"), 1600)
    save_jpeg(img, tmp_path / "life.jpg", quality=95)
    save_jpeg(_at(img, 1067), tmp_path / "life_small.jpg", quality=95)
    r = _rank(tmp_path)
    assert r.loc["life_small.jpg", "final_score"] >= r.loc["life.jpg", "final_score"] - benchmark.HARMLESS_TOLERANCE


@pytest.mark.parametrize("long_side", [640, 1024])
def test_camera_noise_does_not_hide_clipped_highlights(tmp_path, dandelions, long_side):
    """dandelions has a blown, backlit sky. Noise added over it speckles the clipped area, so fewer of its
    pixels reach the clipping level; those left are fragments and count in full, where the clean photo's
    compact blown sky counts a fifth (``hist8``). Before, every noisy copy read as *better* exposed."""
    img = _at(dandelions, long_side)
    save_jpeg(img, tmp_path / "clean.jpg", quality=95)
    for level in (1, 2, 3):
        save_jpeg(degrade.camera_noise(img, level, seed=3), tmp_path / f"camera{level}.jpg", quality=95)
    r = _rank(tmp_path)
    assert r.loc["clean.jpg", "clipped_interior"] > 0.5
    for level in (1, 2, 3):
        noisy = r.loc[f"camera{level}.jpg"]
        assert noisy["exposure_norm"] < r.loc["clean.jpg", "exposure_norm"], level
        assert noisy["final_score"] < r.loc["clean.jpg", "final_score"], level


def test_compact_blown_light_sources_cost_less_than_over_exposure(tmp_path):
    """lomiri's `lamps`: a fifth of the frame is the lamps themselves, blown as light sources are. They cost
    far less than the same share of clipping would (exposure 0.33 before ``hist8``), while an over-exposed
    copy, whose clipping spreads into the wall and the bird, still ranks below."""
    img = _at(large_photo("lamps"), 2048)
    save_jpeg(img, tmp_path / "lamps.jpg", quality=95)
    save_jpeg(degrade.overexpose(img, 1), tmp_path / "brighter.jpg", quality=95)
    r = _rank(tmp_path)
    lamps, brighter = r.loc["lamps.jpg"], r.loc["brighter.jpg"]
    assert lamps["clipped_highlights"] > 0.15 and lamps["clipped_interior"] > 0.8
    assert lamps["exposure_norm"] > 0.5
    assert brighter["clipped_highlights"] > lamps["clipped_highlights"]
    assert brighter["final_score"] < lamps["final_score"]


def test_film_grain_does_not_make_a_blurred_copy_win(tmp_path):
    """A grainy film scan (matplotlib's grace_hopper.jpg, as shipped) above its motion-blurred copy, which
    has lost the grain along with the detail (the sample album's case before noise estimate ``mad1``)."""
    import shutil

    import matplotlib.cbook

    src = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    shutil.copyfile(src, tmp_path / "grace.jpg")
    img = np.asarray(Image.open(src).convert("RGB"))
    for level in (1, 2, 3):
        save_jpeg(degrade.motion_blur(img, level), tmp_path / f"grace_motion{level}.jpg", quality=95)
    r = _rank(tmp_path)
    assert list(r.sort_values("final_score", ascending=False).index) == [
        "grace.jpg", "grace_motion1.jpg", "grace_motion2.jpg", "grace_motion3.jpg"]


@pytest.mark.parametrize("long_side", [640, 1024])
def test_clipped_then_darkened_still_reads_as_clipped(tmp_path, long_side):
    """brushes has a clipped white area; darkened by 1 EV (or flattened) the clip is a pile below 255 with
    a thin tail of JPEG ringing above it, which must not be taken for the top of the histogram."""
    img = _at(large_photo("brushes"), long_side)
    save_jpeg(img, tmp_path / "brushes.jpg", quality=95)
    save_jpeg(degrade.underexpose(img, 1), tmp_path / "darker.jpg", quality=95)
    save_jpeg(degrade.reduce_contrast(img, 1), tmp_path / "flatter.jpg", quality=95)
    r = _rank(tmp_path)
    assert r.loc["brushes.jpg", "clipped_highlights"] > 0.05
    for f in ("darker.jpg", "flatter.jpg"):
        assert r.loc[f, "highlight_pile"] > 0.03, f
        assert r.loc[f, "final_score"] < r.loc["brushes.jpg", "final_score"], f


@pytest.mark.parametrize("long_side", [1600, 2048])  # its native size is 3088 px
def test_dense_texture_in_a_camera_sized_file_is_not_read_as_noise(tmp_path, long_side):
    """A field of flowers (lomiri's `life`) is texture at the pixel scale of its reduced decode: the robust
    estimate, right for files decoded at full scale, reads it as noise (and would cut its sharpness by a
    third); a reduced decode uses the texture-blind estimate, and a quarter of the robust one only as a
    lower bound (``mad4``)."""
    img = _at(large_photo("life"), long_side)
    clean = save_jpeg(img, tmp_path / "life.jpg", quality=95)
    d = imaging.decode(clean)
    assert d.reduction >= 2
    assert _signals.noise_sigma(d.fine_gray) > 2.0  # what the full-scale estimator would say
    r = _rank(tmp_path)
    assert r.loc["life.jpg", "noise_sigma"] < 1.0
    assert r.loc["life.jpg", "sharpness_norm"] > 0.7  # crisp detail, not discounted as noisy


@pytest.mark.parametrize("long_side", [1600, 3000])
def test_noise_in_dense_texture_of_a_camera_sized_file_ranks_below_the_clean_photo(tmp_path, long_side):
    """`life`'s texture is soft at the pixel scale (its finest octave holds a third to a half of the next
    one's residual power), so the scale-invariance test cancels added noise with it: before ``mad4`` white
    noise of sigma 8 and the mildest camera noise read sigma 0 and tied with the clean photo or beat it.
    The robust estimate, as a lower bound, sees them."""
    img = _at(large_photo("life"), long_side)
    save_jpeg(img, tmp_path / "life.jpg", quality=95)
    save_jpeg(_noisy(img, 8), tmp_path / "life_noise.jpg", quality=95)
    save_jpeg(degrade.camera_noise(img, 1, seed=3), tmp_path / "life_camera.jpg", quality=95)
    r = _rank(tmp_path)
    clean = r.loc["life.jpg"]
    for bad in ("life_noise.jpg", "life_camera.jpg"):
        assert r.loc[bad, "noise_sigma"] > clean["noise_sigma"], (bad, long_side)
        assert r.loc[bad, "final_score"] < clean["final_score"], (bad, long_side)


#: How far the scores of one scene may move between a 3000 px file and its 1024 px downscale.
SCALE_TOLERANCE = 0.03


def test_same_scene_scores_the_same_at_1024_and_3000_px(tmp_path, bridge, dandelions):
    for name, photo in (("bridge", bridge), ("dandelions", dandelions)):
        big = _at(photo, 3000)
        save_jpeg(big, tmp_path / f"{name}_3000.jpg", quality=95)
        save_jpeg(_at(big, 1024), tmp_path / f"{name}_1024.jpg", quality=95)
    r = _rank(tmp_path)
    for name in ("bridge", "dandelions"):
        a, b = r.loc[f"{name}_3000.jpg"], r.loc[f"{name}_1024.jpg"]
        assert abs(a["final_score"] - b["final_score"]) <= SCALE_TOLERANCE, name
        for col in ("sharpness_norm", "exposure_norm", "contrast_norm", "noise_norm", "blockiness_norm"):
            assert abs(a[col] - b[col]) <= 2 * SCALE_TOLERANCE, (name, col, a[col], b[col])


def test_a_good_resave_or_downscale_is_not_called_worse(tmp_path, dandelions):
    img = _at(dandelions, 4000)
    save_jpeg(img, tmp_path / "orig.jpg", quality=95)
    with Image.open(tmp_path / "orig.jpg") as im:
        im.save(tmp_path / "resave.jpg", quality=88)
    save_jpeg(_at(img, 2667), tmp_path / "small.jpg", quality=95)
    r = _rank(tmp_path)
    orig = r.loc["orig.jpg", "final_score"]
    for f in ("resave.jpg", "small.jpg"):
        assert r.loc[f, "final_score"] >= orig - benchmark.HARMLESS_TOLERANCE, f


@pytest.mark.slow
def test_rank_folder_is_what_iqc_rank_computes(tmp_path, bridge, capsys):
    """The benchmark's path and ``iqc rank`` give the same final_score for the same files."""
    from iqc_dagster.cli import main

    album = tmp_path / "album"
    img = _at(bridge, 2048)
    save_jpeg(img, album / "clean.jpg", quality=95)
    save_jpeg(_noisy(img, 10), album / "noisy.jpg", quality=95)
    save_jpeg(img, album / "q10.jpg", quality=10)
    Image.fromarray(_at(img, 900)).save(album / "small.png")
    out = tmp_path / "out"
    rc = main(["rank", "--input-dir", str(album), "--no-clip", "--db", str(tmp_path / "iqc.duckdb"),
               "--output-dir", str(out), "--quiet"])
    assert rc == 0
    csv = pd.read_csv(out / "csvs" / "album.csv").set_index("file")
    mine = benchmark.rank_folder(album).set_index("file")
    assert sorted(csv.index) == sorted(mine.index)
    for f in csv.index:
        # the CSV holds 6 decimals
        assert csv.loc[f, "final_score"] == pytest.approx(mine.loc[f, "final_score"], abs=5e-7), f
    assert list(csv.index) == list(mine.index)  # same order
    # and the same near-duplicate groups and best pick, from the hashes rank_folder records
    from iqc_dagster.core import dedup

    grouped = dedup.group_photos(mine.reset_index()).set_index("file")
    assert csv["group_size"].max() > 1  # the copies form a group
    for f in csv.index:
        same_csv = set(csv.index[csv["group_id"] == csv.loc[f, "group_id"]])
        same_mine = set(grouped.index[grouped["group_id"] == grouped.loc[f, "group_id"]])
        assert same_csv == same_mine, f
        assert bool(csv.loc[f, "is_best_in_group"]) == bool(grouped.loc[f, "is_best_in_group"]), f


def test_seed_failure_is_gone_for_noise_above_1024(tmp_path, bridge):
    """The issue's finding: noise_sigma read 0 on a 1600 px copy with sigma 35 (interpolated upwards)."""
    img = _at(bridge, 1600)
    p = save_jpeg(_noisy(img, 35), tmp_path / "n.jpg", quality=95)
    d = imaging.decode(p)
    assert d.reduction == 2 and max(d.rgb.shape[:2]) == 800
    sigma = _signals.cached_noise_sigma(d)
    assert sigma > 10 and math.isfinite(sigma)

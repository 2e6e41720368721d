"""The technical features on real photos and synthetic cases: orderings, not exact numbers."""

import hashlib
import math

import cv2
import numpy as np
import pandas as pd
import pytest

from iqc_dagster.bench import degrade
from iqc_dagster.core import fusion
from iqc_dagster.core import features as feat
from iqc_dagster.core.features import _signals
from iqc_dagster.core.imaging import Decoded
from iqc_dagster_tests.conftest import real_photo

pytest.importorskip("skimage")


def dec(img: np.ndarray) -> Decoded:
    img = np.ascontiguousarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return Decoded(rgb=img, source_width=img.shape[1], source_height=img.shape[0])


_MEASURED: dict[str, dict] = {}


def measures(img) -> dict[str, dict[str, float]]:
    """All features of ``img`` (memoised by content: several tests score the same copies)."""
    img = np.ascontiguousarray(img)
    key = hashlib.blake2b(img.tobytes(), digest_size=16).hexdigest() + str(img.shape)
    if key not in _MEASURED:
        _MEASURED[key] = {f.name: f.measure(d) for d in [dec(img)] for f in feat.FEATURES.values()}
    return _MEASURED[key]


def scores(img) -> dict[str, float]:
    return feat.score_photo(measures(img))


def final(imgs: dict[str, np.ndarray]) -> pd.Series:
    """The product's final score (CLIP off) of each image, through the real fusion."""
    rows = [{"path": k, **scores(v)} for k, v in imgs.items()]
    df = pd.DataFrame(rows)
    df["aesthetic"] = math.nan
    return pd.Series(fusion.fuse(df, fusion.DEFAULT_WEIGHTS).final_score.to_numpy(), index=df["path"])


@pytest.fixture(scope="module")
def astronaut():
    return real_photo("astronaut")


@pytest.fixture(scope="module")
def coffee():
    return real_photo("coffee")


def test_registry_columns_and_measure_keys_are_unique():
    cols = [f.column for f in feat.FEATURES.values()]
    assert len(cols) == len(set(cols))
    assert {"sharpness_norm", "exposure_norm", "contrast_norm", "face_present", "noise_norm",
            "blockiness_norm", "colorfulness_norm"} <= set(cols)
    img = real_photo("chelsea")
    keys = [k for m in measures(img).values() for k in m]
    assert len(keys) == len(set(keys)), keys
    for f in feat.FEATURES.values():
        assert all(i in feat.FEATURES for i in f.inputs)


def test_noisy_photo_ranks_below_clean(astronaut, coffee):
    for img in (astronaut, coffee):
        noisy = {lv: degrade.gaussian_noise(img, lv, seed=3) for lv in (1, 2, 3)}
        f = final({"clean": img, **{f"noisy{lv}": v for lv, v in noisy.items()}})
        assert f["clean"] > f["noisy1"] > f["noisy2"] > f["noisy3"]
        s_clean, s_noisy = scores(img), scores(noisy[2])
        assert s_noisy["noise_norm"] < s_clean["noise_norm"]
        assert s_noisy["sharpness_norm"] < s_clean["sharpness_norm"]
        # the seed's figure is fooled: the Laplacian variance goes *up* with noise
        assert measures(noisy[2])["sharpness"]["laplacian_var"] > measures(img)["sharpness"]["laplacian_var"]


def test_noise_estimate_ignores_edges_and_sees_white_and_correlated_noise():
    flat = np.full((256, 256), 128.0) + np.random.default_rng(1).normal(0, 10, (256, 256))
    assert _signals.noise_sigma(np.clip(np.rint(flat), 0, 255).astype(np.uint8)) == pytest.approx(10, rel=0.1)
    # a clean file reads about 0: edges and sparse structure fall in the larger half of each tile's residual
    steps = np.zeros((256, 256), np.uint8)
    steps[:, 128:] = 200
    steps[100:140, 30:90] = 60
    assert _signals.noise_sigma(steps) < 0.3
    for name in ("astronaut", "camera", "rocket", "coffee"):
        img = real_photo(name)
        gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        clean = _signals.noise_sigma(gray)
        assert clean < 1.5, name
        # camera-like noise, correlated over neighbouring pixels: a scale-invariance test called it texture
        rgb = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
        noisy = cv2.cvtColor(degrade.camera_noise(rgb, 1, seed=2), cv2.COLOR_RGB2GRAY)
        assert _signals.noise_sigma(noisy) > clean + 0.5, name
    # dense pixel-scale texture reads as some noise (the documented limit), yet added noise reads higher
    grass = real_photo("grass")
    noisy = np.clip(grass + np.random.default_rng(0).normal(0, 8, grass.shape), 0, 255).astype(np.uint8)
    assert _signals.noise_sigma(noisy) > _signals.noise_sigma(grass) + 2


def test_noise_estimate_is_not_fooled_by_clipped_areas():
    """Noise does not show where the signal is clipped: a blown sky's tiles have no residual. With 30% of
    the frame blown they are the quietest tiles, and taking them for the noise level read 0 (``mad2``)."""
    rng = np.random.default_rng(3)
    img = np.clip(np.rint(120 + rng.normal(0, 6, (384, 512))), 0, 255)
    img[:, :160] = 255  # blown: noise and all clipped to white
    sigma = _signals.noise_sigma(img.astype(np.uint8))
    assert sigma == pytest.approx(6, rel=0.15)
    # however little is left unclipped, it is what shows the noise (3 tiles of 100 here)
    few = np.clip(np.rint(120 + rng.normal(0, 6, (320, 320))), 0, 255)
    few[:, 96:] = 255
    few[32:, :96] = 255
    assert _signals.noise_sigma(few.astype(np.uint8)) == pytest.approx(6, rel=0.15)
    # a night shot crushed in every tile: the least crushed tiles still carry (rectified) noise
    night = np.clip(np.rint(3 + rng.normal(0, 6, (427, 640))), 0, 255).astype(np.uint8)
    assert _signals.noise_sigma(night) > 3


def test_blur_ranks_below_sharp_and_levels_are_monotone(astronaut):
    for fn in (degrade.gaussian_blur, degrade.motion_blur):
        s = [scores(astronaut)["sharpness_norm"]]
        s += [scores(fn(astronaut, lv))["sharpness_norm"] for lv in (1, 2, 3)]
        assert s == sorted(s, reverse=True) and len(set(s)) == 4, s


def test_clipped_photo_ranks_below_well_exposed(astronaut, coffee):
    for img in (astronaut, coffee):
        f = final({"ok": img, **{f"over{lv}": degrade.overexpose(img, lv) for lv in (1, 2, 3)}})
        assert f["ok"] > max(f["over1"], f["over2"], f["over3"])
        e_ok = scores(img)["exposure_norm"]
        e_over = [scores(degrade.overexpose(img, lv))["exposure_norm"] for lv in (1, 2, 3)]
        assert e_ok > e_over[0] >= e_over[1] >= e_over[2]


def test_brighter_is_not_better_exposure():
    """The seed's 'mean brightness' rewards a blown-out frame; the histogram score does not."""
    ramp_img = np.tile(np.linspace(20, 235, 256).astype(np.uint8), (192, 1))
    blown = np.clip(ramp_img.astype(int) + 90, 0, 255).astype(np.uint8)
    m_ok, m_blown = measures(ramp_img)["exposure"], measures(blown)["exposure"]
    assert m_blown["mean_luma"] > m_ok["mean_luma"]
    assert m_blown["clipped_highlights"] > 0.2
    assert scores(blown)["exposure_norm"] < scores(ramp_img)["exposure_norm"]


def test_clipping_still_counts_after_the_photo_is_darkened(coffee):
    clipped_then_dark = degrade.underexpose(degrade.overexpose(coffee, 2), 1)
    m = measures(clipped_then_dark)["exposure"]
    assert m["highlight_pile"] > 0.1  # nothing is >= 250 any more, but the pile-up at the top remains
    assert m["clipped_highlights"] >= m["highlight_pile"]
    assert measures(coffee)["exposure"]["highlight_pile"] < 0.02


def test_interior_share_tells_a_compact_blown_area_from_scattered_clipping():
    from iqc_dagster.core.features import exposure

    disc = np.zeros((200, 200), np.uint8)
    cv2.circle(disc, (100, 100), 40, 1, -1)
    assert exposure.interior_share(disc) > 0.85
    speckle = (np.random.default_rng(0).random((200, 200)) < 0.3).astype(np.uint8)
    assert exposure.interior_share(speckle) < 0.01
    assert exposure.interior_share(np.zeros((10, 10), np.uint8)) == 0.0
    assert exposure.highlight_weight(0.0) == 1.0
    assert exposure.highlight_weight(1.0) == pytest.approx(exposure.INTERIOR_WEIGHT)


def test_underexposed_and_flat_copies_rank_below(astronaut, coffee):
    for img in (astronaut, coffee):
        f = final({"ok": img, "dark": degrade.underexpose(img, 2), "flat": degrade.reduce_contrast(img, 2)})
        assert f["ok"] > f["dark"] and f["ok"] > f["flat"]
        assert scores(degrade.reduce_contrast(img, 2))["contrast_norm"] < scores(img)["contrast_norm"]


def test_jpeg_blocky_copy_ranks_below_clean(astronaut, coffee):
    for img in (astronaut, coffee):
        blocky = degrade.jpeg(img, 3)
        b_clean = measures(img)["blockiness"]["jpeg_blockiness"]
        b_blocky = measures(blocky)["blockiness"]["jpeg_blockiness"]
        # relative excess of the steps across the 8 px grid (e = 8 H / (1 - H); H 0.04 / 0.10 -> 0.33 / 0.89)
        assert b_clean < 0.33 < 0.89 < b_blocky
        assert scores(blocky)["blockiness_norm"] < scores(img)["blockiness_norm"]
        f = final({"clean": img, "q30": degrade.jpeg(img, 1), "q6": blocky})
        assert f["clean"] > f["q30"] > f["q6"]


def test_blockiness_is_not_fooled_by_a_2x_upscale(coffee):
    small = coffee[::2, ::2]
    up = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)  # nearest-neighbour 2x: strong 2-px periodicity
    assert measures(up)["blockiness"]["jpeg_blockiness"] < 0.33


def test_bokeh_subject_is_not_below_a_uniformly_soft_copy(astronaut, coffee):
    for img in (astronaut, coffee, real_photo("chelsea")):
        s_bokeh = scores(degrade.bokeh(img))
        s_soft = scores(degrade.soften(img))
        assert s_bokeh["sharpness_norm"] > s_soft["sharpness_norm"]
        m = measures(degrade.bokeh(img))["sharpness"]
        assert m["detail_subject"] > m["detail_global"]  # the global figure alone would punish it


def test_sharpness_score_reads_the_noise_measurement():
    m = {"detail_subject": 2.2}
    no_blocks = {"jpeg_blockiness": 0.0}
    clean = feat.score_photo({"sharpness": m, "noise": {"noise_sigma": 0.0}, "blockiness": no_blocks})
    noisy = feat.score_photo({"sharpness": m, "noise": {"noise_sigma": 12.0}, "blockiness": no_blocks})
    alone = feat.score_photo({"sharpness": m})
    assert noisy["sharpness_norm"] < clean["sharpness_norm"] == pytest.approx(alone["sharpness_norm"])
    assert math.isnan(alone["noise_norm"])


@pytest.mark.parametrize("img", [
    np.zeros((64, 80, 3), np.uint8), np.full((64, 80, 3), 255, np.uint8), np.full((50, 50, 3), 128, np.uint8),
    np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8),
    np.random.default_rng(1).integers(0, 256, (300, 2, 3), dtype=np.uint8),
], ids=["black", "white", "grey", "tiny", "sliver"])
def test_scores_are_finite_and_in_unit_range_on_odd_images(img):
    for col, v in scores(img).items():
        if col in ("eyes_open", "face_sharpness_norm") and math.isnan(v):
            continue  # no face: not applicable (NaN, weight redistributed for the photo)
        assert math.isfinite(v) and 0.0 <= v <= 1.0, (col, v)


def test_adding_an_outlier_does_not_reorder_the_others(astronaut, coffee):
    album = {"a": astronaut, "a_blur": degrade.gaussian_blur(astronaut, 1),
             "a_noise": degrade.gaussian_noise(astronaut, 1),
             "c": coffee, "c_dark": degrade.underexpose(coffee, 1), "c_jpeg": degrade.jpeg(coffee, 2)}
    before = final(album)
    outlier = np.clip(degrade.gaussian_noise(degrade.overexpose(coffee, 3), 3).astype(int) + 60, 0, 255)
    after = final({**album, "outlier": outlier.astype(np.uint8)})
    assert after.drop("outlier").sort_values(ascending=False).index.tolist() == \
        before.sort_values(ascending=False).index.tolist()
    assert after.drop("outlier").to_numpy() == pytest.approx(before.to_numpy())  # absolute: identical scores


def test_colorfulness_follows_hasler_susstrunk():
    grey = np.repeat(real_photo("camera")[..., None], 3, axis=2)
    assert measures(grey)["colorfulness"]["colorfulness_m"] == pytest.approx(0.0, abs=1e-6)
    c = real_photo("coffee")
    assert scores(c)["colorfulness_norm"] > scores(degrade.reduce_contrast(c, 3))["colorfulness_norm"] > 0

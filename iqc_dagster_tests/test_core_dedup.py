"""Perceptual hashes and near-duplicate / burst groups, on real photos (scikit-image, matplotlib)."""

from __future__ import annotations

import datetime as dt
import json

import cv2
import numpy as np
import pandas as pd
import pytest

from iqc_dagster.core import dedup, imaging
from iqc_dagster_tests.conftest import real_photo, save_jpeg

T = dedup.DEFAULT_THRESHOLDS


def _rgb(name):
    a = real_photo(name)
    return np.stack([a] * 3, axis=-1) if a.ndim == 2 else a


def _hash_file(img, path, **kw):
    return dedup.photo_hashes(imaging.decode(save_jpeg(np.ascontiguousarray(img), path, **kw)))


def _crop(a, frac):
    h, w = a.shape[:2]
    dy, dx = int(h * (1 - frac) / 2), int(w * (1 - frac) / 2)
    return a[dy:h - dy, dx:w - dx]


def _resize(a, f):
    return cv2.resize(a, (int(a.shape[1] * f), int(a.shape[0] * f)), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """One photo's crops, resizes and re-encodes, and different photos, all hashed from JPEG files."""
    tmp = tmp_path_factory.mktemp("dedup")
    a = _rgb("astronaut")
    same = {
        "astronaut.jpg": a,
        "astronaut_q40.jpg": a,  # re-encoded (quality below)
        "astronaut_half.jpg": _resize(a, 0.5),
        "astronaut_crop90.jpg": _crop(a, 0.90),
        "astronaut_crop80_small_q50.jpg": _resize(_crop(a, 0.80), 0.6),
    }
    quality = {"astronaut_q40.jpg": 40, "astronaut_crop80_small_q50.jpg": 50}
    different = {f"{n}.jpg": _rgb(n) for n in ["coffee", "chelsea", "rocket", "camera", "grace_hopper"]}
    hashes = {name: _hash_file(img, tmp / name, quality=quality.get(name, 92))
              for name, img in {**same, **different}.items()}
    return list(same), list(different), hashes


def test_hash_is_64_bit_int_and_stable():
    a = _rgb("astronaut")
    h = dedup.phash(a)
    assert isinstance(h, int) and 0 <= h < 2 ** 64
    assert dedup.phash(a) == h
    assert dedup.photo_hashes(a)[0] == h and len(dedup.photo_hashes(a)) == len(dedup.CROP_LADDER)
    # a Decoded, a grey array and an RGB array of the same pixels hash alike
    d = imaging.Decoded(rgb=a, source_width=a.shape[1], source_height=a.shape[0])
    assert dedup.phash(d) == dedup.phash(d.gray) == h
    assert 20 <= bin(h).count("1") <= 44  # median split: about half the bits set


def test_hash_forms_round_trip():
    hs = dedup.photo_hashes(_rgb("coffee"))
    text = dedup.hashes_hex(hs)
    assert len(text) == 16 * len(hs) and dedup.parse_hashes(text) == hs
    signed = [dedup.phash_to_int64(h) for h in hs]
    assert all(-(2 ** 63) <= s < 2 ** 63 for s in signed)
    assert dedup.parse_hashes(signed) == hs
    assert dedup.parse_hashes(hs[0]) == (hs[0],) * len(hs)  # a single hash: its crops taken equal
    for missing in (None, float("nan"), "", "not hex", pd.NA, 1.5):
        assert dedup.parse_hashes(missing) is None
    assert dedup.hamming(0, (1 << 64) - 1) == 64 and dedup.hamming(-1, (1 << 64) - 1) == 0


def test_crops_resizes_reencodes_are_close_and_different_photos_far(variants):
    same, different, h = variants
    for name in same[1:]:
        assert dedup.photo_distance(h[same[0]], h[name]) <= T.phash_near, name
    photos = [same[0], *different]
    for i, a in enumerate(photos):
        for b in photos[i + 1:]:
            assert dedup.photo_distance(h[a], h[b]) > T.phash_burst, (a, b)


def test_group_joins_one_photos_copies_and_keeps_others_apart(variants):
    same, different, h = variants
    names = same + different
    scores = np.linspace(0.9, 0.1, len(names))
    df = pd.DataFrame({"file": names, "path": [f"/album/{n}" for n in names], "final_score": scores,
                       "phash": [h[n] for n in names]})
    g = dedup.group_photos(df)
    assert list(g["file"]) == names  # rows keep their order; nothing removed
    first = g[g["file"].isin(same)]
    assert first["group_id"].nunique() == 1 and (first["group_size"] == len(same)).all()
    assert (first["group_kind"] == "duplicate").all()
    others = g[g["file"].isin(different)]
    assert others["group_id"].nunique() == len(different)
    assert (others["group_size"] == 1).all() and others["is_best_in_group"].all()
    assert others["duplicate_of"].isna().all()
    assert g["group_id"].nunique() == 1 + len(different)
    assert first["group_id"].iloc[0] == 1  # the top photo's group comes first


def test_best_pick_is_highest_final_score(variants):
    same, _, h = variants
    scores = [0.2, 0.3, 0.95, 0.1, 0.5]  # the half-size copy scores highest
    df = pd.DataFrame({"file": same, "final_score": scores, "phash": [dedup.hashes_hex(h[n]) for n in same]})
    g = dedup.group_photos(df)
    best = g[g["is_best_in_group"]]
    assert list(best["file"]) == ["astronaut_half.jpg"]
    rest = g[~g["is_best_in_group"]]
    assert (rest["duplicate_of"] == "astronaut_half.jpg").all()
    assert (g["group_id"] == 1).all()


def test_groups_numbered_by_best_pick_and_ties_broken_by_path():
    df = pd.DataFrame({"path": ["b.jpg", "a.jpg", "c.jpg", "d.jpg"], "final_score": [0.5, 0.5, 0.9, 0.1],
                       "phash": [0, 0, 2 ** 40 - 1, None]})
    g = dedup.group_photos(df)
    assert list(g["group_id"]) == [2, 2, 1, 3]
    assert list(g["is_best_in_group"]) == [False, True, True, True]  # equal scores: a.jpg before b.jpg
    assert g.loc[0, "duplicate_of"] == "a.jpg"
    assert g.loc[3, "group_size"] == 1  # no hash: a group of one


def _burst_frames(tmp_path):
    """Two frames of one scene, the camera panned by 3% of the width: alike, but not near-duplicates."""
    a = _rgb("astronaut")
    w = a.shape[1]
    cw = int(w * 0.9)
    return (_hash_file(a[:, :cw], tmp_path / "f1.jpg"),
            _hash_file(a[:, int(w * 0.03):int(w * 0.03) + cw], tmp_path / "f2.jpg"))


def test_burst_needs_close_capture_times(tmp_path):
    h1, h2 = _burst_frames(tmp_path)
    d = dedup.photo_distance(h1, h2)
    assert T.phash_near < d <= T.phash_burst  # the case bursts exist for
    t0 = dt.datetime(2024, 6, 1, 12, 0, 0)

    def group(seconds_apart):
        df = pd.DataFrame({"file": ["f1.jpg", "f2.jpg"], "final_score": [0.4, 0.6], "phash": [h1, h2],
                           "captured_at": [t0, t0 + dt.timedelta(seconds=seconds_apart)]})
        return dedup.group_photos(df)

    g = group(2)
    assert (g["group_size"] == 2).all() and (g["group_kind"] == "burst").all()
    assert list(g["is_best_in_group"]) == [False, True] and g.loc[0, "duplicate_of"] == "f2.jpg"
    assert (group(300)["group_size"] == 1).all()  # same look, minutes apart: not a burst
    no_time = pd.DataFrame({"file": ["f1.jpg", "f2.jpg"], "final_score": [0.4, 0.6], "phash": [h1, h2]})
    assert (dedup.group_photos(no_time)["group_size"] == 1).all()


def test_burst_rules_on_exact_distances():
    t0 = pd.Timestamp("2024-06-01 12:00:00")
    df = pd.DataFrame({
        "file": ["a", "b", "c", "d"],
        "final_score": [0.1, 0.2, 0.3, 0.4],
        # distances to a: b 14 bits (burst range), c 40 bits (unlike), d 14 bits but no time
        "phash": [0, (1 << 14) - 1, (1 << 40) - 1, (1 << 14) - 1 << 20],
        "captured_at": [t0, t0 + pd.Timedelta(seconds=5), t0 + pd.Timedelta(seconds=6), None],
    })
    g = dedup.group_photos(df)
    assert g.loc[0, "group_id"] == g.loc[1, "group_id"] and g.loc[0, "group_kind"] == "burst"
    assert g.loc[2, "group_size"] == 1 and g.loc[3, "group_size"] == 1


def test_embeddings_join_when_cosine_is_high():
    rng = np.random.default_rng(0)
    base = rng.normal(size=64)
    base /= np.linalg.norm(base)
    q, _ = np.linalg.qr(np.stack([base, rng.normal(size=64), rng.normal(size=64)], axis=1))
    ortho1, ortho2 = q[:, 1], q[:, 2]  # orthogonal to base and to each other

    def at(cos, ortho):  # a vector at exactly this cosine from base (not normalised: group_photos does it)
        return 3.0 * (cos * base + np.sqrt(1 - cos * cos) * ortho)

    # a near-duplicate of base, and a burst-range likeness (0.97 x 0.92 = 0.89 from each other)
    near, loose = at(0.97, ortho1), at(0.92, ortho2)
    t0 = pd.Timestamp("2024-06-01 12:00:00")
    df = pd.DataFrame({"file": ["a", "b", "c", "d"], "final_score": [0.9, 0.8, 0.7, 0.6],
                       "embedding": [base, near, loose, None],
                       "captured_at": [t0, t0 + pd.Timedelta(minutes=5), t0 + pd.Timedelta(seconds=3), t0]})
    g = dedup.group_photos(df)
    assert g.loc[0, "group_id"] == g.loc[1, "group_id"] == g.loc[2, "group_id"]  # b near-dup, c burst
    assert g.loc[0, "group_kind"] == "burst" and g.loc[3, "group_size"] == 1
    g2 = dedup.group_photos(df.assign(captured_at=[t0, t0, t0 + pd.Timedelta(minutes=9), t0]))
    assert g2.loc[2, "group_size"] == 1 and g2.loc[0, "group_kind"] == "duplicate"


def test_empty_and_single():
    empty = dedup.group_photos(pd.DataFrame({"path": [], "final_score": []}))
    assert list(empty.columns[-5:]) == dedup.GROUP_COLUMNS and empty.empty
    one = dedup.group_photos(pd.DataFrame({"path": ["x.jpg"], "final_score": [float("nan")]}))
    assert one.loc[0, "group_size"] == 1 and one.loc[0, "is_best_in_group"]
    with pytest.raises(ValueError):
        dedup.group_photos(pd.DataFrame({"path": ["x"]}))


def test_one_timestamp_for_a_whole_album_does_not_chain_everything():
    """A camera whose clock was never set: bursts only link neighbours in capture order."""
    rng = np.random.default_rng(1)
    n = 3000
    hs = [tuple(int(x) for x in rng.integers(0, 2 ** 63, len(dedup.CROP_LADDER))) for _ in range(n)]
    df = pd.DataFrame({"path": [f"IMG_{i:05d}.jpg" for i in range(n)], "final_score": rng.random(n),
                       "phash": hs, "captured_at": [dt.datetime(2000, 1, 1)] * n})
    g = dedup.group_photos(df)
    assert g["group_size"].max() <= 4
    json.dumps(dedup.group_summary(g))


def test_grouping_scales_to_thousands_quickly():
    import time

    rng = np.random.default_rng(2)
    n = 6000
    hs = [tuple(int(x) for x in rng.integers(0, 2 ** 63, len(dedup.CROP_LADDER))) for _ in range(n)]
    # 50 planted near-duplicates
    for k in range(50):
        hs[n - 1 - k] = tuple(h ^ 0b101 for h in hs[k])
    df = pd.DataFrame({"path": [f"p{i}.jpg" for i in range(n)], "final_score": rng.random(n), "phash": hs})
    t0 = time.perf_counter()
    g = dedup.group_photos(df)
    assert time.perf_counter() - t0 < 30
    for k in range(50):
        assert g.loc[k, "group_id"] == g.loc[n - 1 - k, "group_id"]
    assert dedup.group_summary(g)["n_groups"] >= 50

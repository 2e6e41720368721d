"""Exposure brackets and focus stacks from EXIF (core/brackets.py) and how grouping keeps them whole."""

import numpy as np
import pandas as pd

from iqc_dagster.core import brackets, dedup, reasons


def _frames(biases=(), times=None, t=None, dist=None, start="2024-05-01 10:00:00", step_s=0.0, model="X"):
    n = len(biases) if biases else len(t or dist)
    when = pd.Timestamp(start)
    return pd.DataFrame({
        "path": [f"IMG_{i:04d}.jpg" for i in range(n)],
        "captured_at": times or [when + pd.Timedelta(seconds=step_s * i) for i in range(n)],
        "exposure_bias": list(biases) if biases else [0.0] * n,
        "exposure_time": t or [1 / 125] * n, "f_number": [8.0] * n, "iso": [100.0] * n,
        "focal_length": [35.0] * n, "subject_distance": dist or [None] * n, "make": ["Cam"] * n,
        "model": [model] * n})


def test_auto_exposure_bracket_in_camera_order():
    seq = brackets.find_sequences(_frames((0, -2, 2)))
    assert seq == [([0, 1, 2], "bracket")]
    seq = brackets.find_sequences(_frames((0, -1, 1, -2, 2), step_s=0.5))
    assert seq == [([0, 1, 2, 3, 4], "bracket")]


def test_manual_bracket_by_exposure_time():
    seq = brackets.find_sequences(_frames(t=[1 / 500, 1 / 125, 1 / 30], step_s=1))
    assert seq == [([0, 1, 2], "bracket")]


def test_not_brackets():
    assert brackets.find_sequences(_frames((0, 0, 0))) == []  # a burst: same exposure
    assert brackets.find_sequences(_frames((0, -1, 2))) == []  # uneven steps
    assert brackets.find_sequences(_frames((0, -1, 1), step_s=5)) == []  # too far apart
    mixed = _frames((0, -1, 1))
    mixed.loc[2, "model"] = "Other"
    assert brackets.find_sequences(mixed) == []  # another camera
    assert brackets.find_sequences(_frames((0, -1))) == []  # two frames say nothing


def test_focus_stack_from_subject_distance():
    seq = brackets.find_sequences(_frames(dist=[0.30, 0.32, 0.35, 0.40, 0.50], step_s=0.3))
    assert seq == [([0, 1, 2, 3, 4], "focus_stack")]
    assert brackets.find_sequences(_frames(dist=[0.3, 0.5, 0.3], step_s=0.3)) == []  # back and forth


def test_bracket_then_unrelated_photos_in_one_album():
    a = _frames((0, -2, 2))
    b = _frames((0.0, 0.0), start="2024-05-01 12:00:00")
    b["path"] = ["later_a.jpg", "later_b.jpg"]
    seq = brackets.find_sequences(pd.concat([a, b], ignore_index=True))
    assert seq == [([0, 1, 2], "bracket")]


def test_grouping_keeps_every_bracket_frame_and_says_so():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"file": ["b0.jpg", "b1.jpg", "b2.jpg", "x.jpg", "x_copy.jpg"],
                       "final_score": [0.7, 0.4, 0.5, 0.9, 0.8],
                       "phash": [int(v) for v in rng.integers(0, 2 ** 62, 3)] + [12345, 12345],
                       "captured_at": pd.to_datetime(["2024-05-01 10:00:00"] * 3 + [None, None])})
    g = dedup.group_photos(df, sequences=[([0, 1, 2], "bracket")]).set_index("file")
    assert set(g.loc[["b0.jpg", "b1.jpg", "b2.jpg"], "group_kind"]) == {"bracket"}
    assert g.loc[["b0.jpg", "b1.jpg", "b2.jpg"], "is_best_in_group"].all()
    assert g.loc[["b0.jpg", "b1.jpg", "b2.jpg"], "duplicate_of"].isna().all()
    assert g.loc["x_copy.jpg", "group_kind"] == "duplicate" and not g.loc["x_copy.jpg", "is_best_in_group"]
    text = reasons.reasons_for(g.loc["b1.jpg"].to_dict() | {"file": "b1.jpg"})
    assert "one of 3 frames of an exposure bracket" in text and "lower score" not in text
    assert dedup.group_summary(g.reset_index())["n_duplicates"] == 1


def test_only_runs_of_close_frames_are_candidates():
    t = pd.to_datetime(["2024-05-01 10:00:00", "2024-05-01 10:00:01", "2024-05-01 10:00:02",
                        "2024-05-01 11:00:00", None, "2024-05-01 12:00:00", "2024-05-01 12:00:01"])
    assert brackets.candidates(t).tolist() == [True, True, True, False, False, False, False]


def test_jpeg_bracket_read_from_files(tmp_path):
    """EXIF as a camera writes it into JPEGs (Pillow here), read back by exiv2: 0, -2/3, +2/3 EV."""
    from PIL import Image, TiffImagePlugin

    R = TiffImagePlugin.IFDRational
    paths = []
    for i, (ev, level) in enumerate(((0, 120), (-2, 90), (2, 160))):
        ex = Image.Exif()
        ex[0x010F], ex[0x0110] = "Cam", "M1"
        ifd = ex.get_ifd(0x8769)
        ifd[0x9003], ifd[0x9204], ifd[0x829A], ifd[0x829D] = "2024:05:01 10:00:00", R(ev, 3), R(1, 125), R(8, 1)
        p = tmp_path / f"IMG_{i}.jpg"
        Image.fromarray(np.full((40, 60, 3), level, np.uint8)).save(p, exif=ex)
        paths.append(p)
    exif = brackets.read_exif(paths)
    exif["path"] = [p.name for p in paths]
    assert exif["exposure_bias"].round(3).tolist() == [0.0, -0.667, 0.667]
    assert brackets.find_sequences(exif) == [([0, 1, 2], "bracket")]

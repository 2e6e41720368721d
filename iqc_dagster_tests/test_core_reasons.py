"""Per-photo reasons: what lifts and what sinks each photo."""

from __future__ import annotations

import pandas as pd

from iqc_dagster.core import reasons

NAN = float("nan")


def parts(text: str) -> list[str]:
    return [p for p in text.split("; ") if p]


def test_lifts_before_sinks_and_the_issue_example():
    text = reasons.reasons_for({"sharpness_norm": 0.92, "face_present": 1, "clipped_highlights": 0.12,
                                "exposure_norm": 0.3, "final_score": 0.7})
    p = parts(text)
    assert {"+ sharp", "+ face", "- 12% of highlights clipped"} <= set(p)
    signs = [x[0] for x in p]
    assert signs == sorted(signs, key=lambda s: s != "+")  # every lift before every sink


def test_sinks():
    assert "- soft focus" in parts(reasons.reasons_for({"sharpness_norm": 0.3}))
    assert "- blurry" in parts(reasons.reasons_for({"sharpness_norm": 0.05}))
    assert "- dark" in parts(reasons.reasons_for({"median_luma": 0.08, "exposure_norm": 0.1}))
    assert "- poorly exposed" not in parts(reasons.reasons_for({"median_luma": 0.08, "exposure_norm": 0.1}))
    assert "- poorly exposed" in parts(reasons.reasons_for({"exposure_norm": 0.1}))
    assert "- flat contrast" in parts(reasons.reasons_for({"contrast_norm": 0.1}))
    assert "- noisy" in parts(reasons.reasons_for({"noise_norm": 0.2}))
    assert "- 30% of shadows crushed" in parts(reasons.reasons_for({"clipped_shadows": 0.3}))


def test_exposure_words_do_not_contradict_the_score():
    low_key = parts(reasons.reasons_for({"median_luma": 0.1, "exposure_norm": 0.95}))
    assert "- dark" not in low_key and "+ well exposed" in low_key
    clipped = parts(reasons.reasons_for({"clipped_highlights": 0.2, "exposure_norm": 0.9}))
    assert "- 20% of highlights clipped" in clipped and "+ well exposed" not in clipped


def test_unknown_norm_columns_get_generic_words():
    p = parts(reasons.reasons_for({"dynamic_range_norm": 0.05, "vividness_norm": 0.97}))
    assert "- low dynamic range" in p and "+ high vividness" in p


def test_groups():
    dup = {"group_size": 3, "is_best_in_group": False, "duplicate_of": "IMG_1.jpg", "group_kind": "duplicate",
           "sharpness_norm": 0.9}
    assert parts(reasons.reasons_for(dup))[-1] == "- duplicate of IMG_1.jpg, lower score"
    burst = {**dup, "group_kind": "burst"}
    assert "- burst with IMG_1.jpg, lower score" in parts(reasons.reasons_for(burst))
    best = {"group_size": 3, "is_best_in_group": "True"}
    assert parts(reasons.reasons_for(best)) == ["+ best of 3 similar"]
    single = {"group_size": 1, "is_best_in_group": True}
    assert reasons.reasons_for(single) == ""


def test_missing_and_odd_values_are_skipped():
    assert reasons.reasons_for({}) == ""
    assert reasons.reasons_for({"sharpness_norm": NAN, "aesthetic": None, "contrast_norm": "n/a",
                                "face_present": NAN, "file": "x.jpg"}) == ""
    assert parts(reasons.reasons_for({"face_count": 3, "face_present": 1})) == ["+ 3 faces"]


def test_at_most_three_each():
    row = {"sharpness_norm": 0.99, "exposure_norm": 0.99, "contrast_norm": 0.99, "aesthetic": 0.99,
           "face_present": 1, "noise_norm": 0.0, "blockiness_norm": 0.0, "colorfulness_norm": 0.0,
           "clipped_highlights": 0.5}
    p = parts(reasons.reasons_for(row))
    assert sum(x.startswith("+") for x in p) == 3 and sum(x.startswith("-") for x in p) == 3


def test_column_for_a_table():
    df = pd.DataFrame({"file": ["a", "b"], "sharpness_norm": [0.9, 0.1]}, index=[10, 20])
    s = reasons.photo_reasons(df)
    assert list(s.index) == [10, 20] and s.name == "reasons"
    assert s[10] == "+ sharp" and s[20] == "- blurry"
    assert list(reasons.add_reasons(df).columns) == ["file", "sharpness_norm", "reasons"]

"""Proxy metrics on small tables whose values can be worked out by hand."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from iqc_dagster.core import metrics

NAN = float("nan")


def known_table() -> pd.DataFrame:
    return pd.DataFrame({
        "file": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
        "final_score": [0.9, 0.7, 0.5, 0.3],
        "group_id": [1, 1, 2, 3],
        "group_size": [2, 2, 1, 1],
        "is_best_in_group": [True, False, True, True],
        "sharpness_norm": [0.1, 0.2, 0.3, NAN],
        "aesthetic": [0.3, 0.2, 0.1, 0.5],
    })


def test_known_table():
    m = metrics.proxy_metrics(known_table(), n_unreadable=2)
    assert m["n_ranked"] == 4 and m["n_unreadable"] == 2
    assert m["score_mean"] == pytest.approx(0.6)
    # population std: sqrt((0.3² + 0.1² + 0.1² + 0.3²) / 4) = sqrt(0.05)
    assert m["score_std"] == pytest.approx(math.sqrt(0.05), abs=1e-6)
    assert m["duplicate_fraction"] == pytest.approx(0.25)  # b.jpg, 1 of 4
    assert m["n_groups"] == 1 and m["n_grouped_photos"] == 2
    # the 3 photos with both scores are in exactly opposite order
    assert m["sharpness_corr"] == pytest.approx(-1.0) and m["sharpness_corr_n"] == 3
    assert list(m) == metrics.METRIC_KEYS
    json.dumps(m, allow_nan=False)


def test_spearman_with_ties():
    # ranks (average for ties): x [3.5, 3.5, 1.5, 1.5], y [4, 2.5, 2.5, 1]
    # centred: x [1, 1, -1, -1], y [1.5, 0, 0, -1.5]; r = 3 / (2 * sqrt(4.5)) = 0.7071
    r, n = metrics.spearman([1, 1, 0, 0], [1, 0.5, 0.5, 0])
    assert n == 4 and r == pytest.approx(1 / math.sqrt(2))


def test_correlation_needs_three_pairs_and_variation():
    df = known_table()
    df.loc[1:, "aesthetic"] = NAN  # only a.jpg has both
    assert metrics.proxy_metrics(df)["sharpness_corr"] is None
    flat = known_table().assign(sharpness_norm=[0.5, 0.5, 0.5, 0.5])
    assert metrics.proxy_metrics(flat)["sharpness_corr"] is None
    no_aesthetic = known_table().drop(columns="aesthetic")
    m = metrics.proxy_metrics(no_aesthetic)
    assert m["sharpness_corr"] is None and m["sharpness_corr_n"] == 0


def test_without_groups_and_empty():
    m = metrics.proxy_metrics(known_table().drop(columns=["group_id", "group_size", "is_best_in_group"]))
    assert m["duplicate_fraction"] is None and m["n_groups"] is None
    e = metrics.proxy_metrics(pd.DataFrame({"final_score": []}), n_unreadable=3)
    assert e["n_ranked"] == 0 and e["n_unreadable"] == 3 and e["score_std"] is None
    json.dumps(e, allow_nan=False)


def test_single_photo_and_csv_strings():
    one = metrics.proxy_metrics(pd.DataFrame({"final_score": [0.4]}))
    assert one["score_std"] == 0.0 and one["score_mean"] == pytest.approx(0.4)
    df = known_table()
    df["is_best_in_group"] = ["True", "False", "True", "True"]  # as read back from a CSV
    assert metrics.proxy_metrics(df)["duplicate_fraction"] == pytest.approx(0.25)

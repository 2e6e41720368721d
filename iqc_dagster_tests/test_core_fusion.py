import math

import numpy as np
import pandas as pd
import pytest

from iqc_dagster.core import fusion


def _scores(**cols):
    n = len(next(iter(cols.values())))
    df = pd.DataFrame({"path": [f"p{i}.jpg" for i in range(n)]})
    for k, v in cols.items():
        df[k] = v
    return df


def test_missing_feature_weight_is_redistributed():
    df = _scores(aesthetic=[np.nan, np.nan], sharpness_norm=[1.0, 0.0], exposure_norm=[0.0, 1.0])
    r = fusion.fuse(df, {"aesthetic": 0.5, "sharpness": 0.3, "exposure": 0.1})
    assert r.unavailable == ["aesthetic"]
    assert r.effective_weights == pytest.approx({"sharpness": 0.75, "exposure": 0.25})
    assert r.final_score.tolist() == pytest.approx([0.75, 0.25])
    assert any("aesthetic" in n and "redistributed" in n for n in r.notes)


def test_per_photo_missing_value_keeps_score_in_range():
    df = _scores(sharpness_norm=[1.0, np.nan], exposure_norm=[0.0, 0.6])
    r = fusion.fuse(df, {"sharpness": 0.5, "exposure": 0.5})
    assert r.final_score.tolist() == pytest.approx([0.5, 0.6])
    assert any("miss some scores" in n for n in r.notes)


def test_no_available_score_is_an_error():
    with pytest.raises(ValueError):
        fusion.fuse(_scores(aesthetic=[np.nan]), {"aesthetic": 1.0})


def test_rank_is_one_to_n_descending_and_stable():
    df = _scores(sharpness_norm=[0.2, 0.9, 0.2, 0.5])
    r = fusion.fuse(df, {"sharpness": 1.0})
    ranked = fusion.rank(df, r.final_score)
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    assert ranked["path"].tolist() == ["p1.jpg", "p3.jpg", "p0.jpg", "p2.jpg"]


def test_validate_weights():
    assert fusion.validate_weights({"sharpness": 1}) == {"sharpness": 1.0}
    for bad in ({"nope": 1.0}, {"sharpness": -1.0}, {"sharpness": math.nan}, {"sharpness": 0.0}):
        with pytest.raises(ValueError):
            fusion.validate_weights(bad)


def test_weights_id_identifies_values_and_source():
    a = fusion.Weights(dict(fusion.DEFAULT_WEIGHTS))
    assert a.weights_id == fusion.Weights(dict(fusion.DEFAULT_WEIGHTS)).weights_id
    assert a.weights_id != fusion.Weights({**fusion.DEFAULT_WEIGHTS, "faces": 0.2}).weights_id
    assert fusion.Weights.from_json(a.to_json()) == a

"""Weight tuning on preferences (core.tuning, pure): objective, split, study resume, storage rule."""

import math

import duckdb
import numpy as np
import optuna
import pandas as pd
import pytest

from iqc_dagster.core import fusion, tuning

COLS = {"sharpness": "sharpness_norm", "exposure": "exposure_norm", "contrast": "contrast_norm",
        "faces": "face_present"}


def one_feature_problem(decider: str = "contrast", n: int = 120, seed: int = 1) -> tuning.Preferences:
    """Random scores; the preference between two photos is decided by ``decider`` alone."""
    rng = np.random.default_rng(seed)
    scores = pd.DataFrame({c: rng.random(n) for c in COLS.values()})
    scores["face_present"] = (scores["face_present"] > 0.5).astype(float)
    scores.insert(0, "item", [f"p{i:03d}" for i in range(n)])
    scores.insert(1, "key", scores["item"])
    v = scores[COLS[decider]].to_numpy()
    i, j = np.nonzero(v[:, None] > v[None, :] + 0.05)
    keep = rng.choice(len(i), min(3000, len(i)), replace=False)
    pairs = np.stack([i[keep], j[keep]], axis=1)
    return tuning.Preferences(scores=scores, pairs=pairs, source="ratings",
                              assignment=tuning.split_keys(scores["key"].tolist()))


def test_pairwise_agreement_counts_ties_half():
    final = np.array([0.9, 0.5, 0.5, np.nan])
    assert tuning.pairwise_agreement(final, np.array([[0, 1], [1, 0], [1, 2], [0, 3]])) == pytest.approx(
        (1 + 0 + 0.5 + 0.5) / 4)
    assert math.isnan(tuning.pairwise_agreement(final, np.zeros((0, 2), int)))


def test_tuning_puts_most_weight_on_the_feature_that_decides(tmp_path):
    prefs = one_feature_problem("contrast")
    res = tuning.run_study(prefs, n_trials=60, storage_dir=tmp_path, seed=0)
    w = res.best_weights
    tuned = {k: w[k] for k in COLS}
    assert max(tuned, key=tuned.get) == "contrast"
    assert w["contrast"] > 0.5 * sum(tuned.values())
    # aesthetic has no values here: it keeps its default share of the total
    assert w["aesthetic"] == pytest.approx(0.35 / sum(fusion.DEFAULT_WEIGHTS.values()), abs=1e-3)
    assert sum(w.values()) == pytest.approx(1.0, abs=1e-3)
    assert res.heldout_tuned > res.heldout_default + 0.1
    assert res.heldout_tuned > 0.9
    assert res.tune_tuned >= res.tune_default  # trial 0 is the defaults
    assert set(res.keys_tune).isdisjoint(res.keys_heldout)
    assert res.n_pairs_tune > 0 and res.n_pairs_heldout > 0
    s = res.summary()
    assert {"best_weights", "heldout_default", "heldout_tuned", "n_trials", "objective"} <= set(s)
    assert s["objective"] == tuning.OBJECTIVE_RATINGS and s["n_trials"] == 60
    png = tuning.plot_history(res, tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_study_resumes_from_stored_trials(tmp_path):
    prefs = one_feature_problem("exposure", n=60)
    first = tuning.run_study(prefs, n_trials=5, storage_dir=tmp_path, seed=0)
    assert first.n_trials == 5
    stored = optuna.load_study(study_name=first.study_name, storage=first.storage)
    params_before = [t.params for t in stored.trials]
    assert params_before[0] == {f"w_{k}": fusion.DEFAULT_WEIGHTS[k] for k in COLS}  # defaults first

    second = tuning.run_study(prefs, n_trials=7, storage_dir=tmp_path, seed=0)
    assert second.study_name == first.study_name
    assert second.n_trials == 12 and second.n_new_trials == 7
    again = optuna.load_study(study_name=first.study_name, storage=first.storage)
    assert [t.params for t in again.trials[:5]] == params_before
    assert len({tuple(sorted(t.params.items())) for t in again.trials}) == 12  # no replayed trials
    assert second.tune_tuned >= first.tune_tuned  # the best of 12 includes the best of the first 5

    other = tuning.run_study(one_feature_problem("exposure", n=61), n_trials=1, storage_dir=tmp_path)
    assert other.study_name != first.study_name and other.n_trials == 1  # other data, other study


def test_split_keys_is_deterministic_and_two_sided():
    keys = [f"k{i}" for i in range(200)]
    a = tuning.split_keys(keys)
    assert a == tuning.split_keys(list(reversed(keys)))
    share = sum(v == tuning.HELDOUT for v in a.values()) / len(a)
    assert 0.3 < share < 0.5
    two = tuning.split_keys(["x", "y"], heldout_fraction=0.0)
    assert sorted(two.values()) == [tuning.HELDOUT, tuning.TUNE]


def _fake_benchmark_frame():
    rows = []
    rng = np.random.default_rng(0)
    for ref, split in [("r1", "calibration"), ("r2", "calibration"), ("r3", "held_out"), ("r4", "held_out")]:
        kinds = [("reference", 0)] + [(d, lv) for d in ("gaussian_blur", "underexpose") for lv in (1, 2, 3)]
        kinds += [("bokeh", 0), ("soft", 0)]
        for d, lv in kinds:
            rows.append({"reference": ref, "split": split, "distortion": d, "level": lv,
                         "path": f"{ref}/{d}{lv or ''}", "sharpness_norm": rng.random(),
                         "exposure_norm": rng.random(), "contrast_norm": rng.random(), "face_present": 0.0})
    return pd.DataFrame(rows)


def test_synthetic_pairs_are_split_by_reference_photo():
    frame = _fake_benchmark_frame()
    prefs = tuning.synthetic_preferences(frame)
    # per reference: 6 (ref > copy) + 2 x 3 (milder > harsher) + 1 (bokeh > soft)
    assert len(prefs.pairs) == 4 * 13
    assert prefs.assignment == {"r1": "tune", "r2": "tune", "r3": "heldout", "r4": "heldout"}
    tune, held, dropped = prefs.split_pairs()
    assert dropped == 0 and len(tune) == len(held) == 26
    keys = prefs.scores["key"].to_numpy()
    for part, name in ((tune, "tune"), (held, "heldout")):
        assert {prefs.assignment[k] for k in keys[part.ravel()]} == {name}
    sc = prefs.scores.set_index("item")
    better, worse = prefs.scores["item"].to_numpy()[prefs.pairs[0]]
    assert better == "r1/reference" and sc.loc[worse, "key"] == "r1"
    # without both benchmark splits the references are hash-split; still never a reference on both sides
    only = tuning.synthetic_preferences(frame[frame["split"] == "calibration"])
    assert set(only.assignment.values()) == {"tune", "heldout"}
    assert set(only.keys_in("tune")).isdisjoint(only.keys_in("heldout"))


def test_rated_photos_are_split_by_content_and_paired_within_albums():
    scores = pd.DataFrame({
        "album": ["a", "a", "a", "b", "b"], "path": ["1.jpg", "2.jpg", "3.jpg", "1.jpg", "copy.jpg"],
        "content_hash": ["h1", "h2", "h3", "h4", "h1"], "sharpness_norm": [0.9, 0.5, 0.1, 0.7, 0.9]})
    r = {("a", "1.jpg"): 5, ("a", "2.jpg"): 3, ("a", "3.jpg"): 3, ("b", "1.jpg"): 1, ("b", "copy.jpg"): 4}
    prefs = tuning.ratings_preferences(scores, r)
    items = prefs.scores["item"].to_numpy()
    pairs = {(items[a], items[b]) for a, b in prefs.pairs}
    assert pairs == {("a/1.jpg", "a/2.jpg"), ("a/1.jpg", "a/3.jpg"), ("b/copy.jpg", "b/1.jpg")}
    assert prefs.assignment.keys() == {"h1", "h2", "h3", "h4"}  # a copy shares its original's side


def test_weights_from_raw_keeps_untuned_default_shares():
    w = tuning.weights_from_raw({"sharpness": 1.0, "exposure": 0.0, "contrast": 1.0, "faces": 0.0},
                                ["sharpness", "exposure", "contrast", "faces"])
    total = sum(fusion.DEFAULT_WEIGHTS.values())
    untuned = {k: v for k, v in fusion.DEFAULT_WEIGHTS.items()
               if k not in ("sharpness", "exposure", "contrast", "faces")}  # aesthetic, eyes, face focus
    for k, v in untuned.items():
        assert w[k] == pytest.approx(v / total, abs=1e-4)
    rest = 1 - sum(untuned.values()) / total
    assert w["sharpness"] == w["contrast"] == pytest.approx(rest / 2, abs=1e-4)
    assert w["exposure"] == w["faces"] == 0.0
    fusion.validate_weights(w)
    zero = tuning.weights_from_raw({"sharpness": 0.0, "contrast": 0.0}, ["sharpness", "contrast"])
    assert zero["sharpness"] == zero["contrast"] > 0


def test_gather_preferences_precedence(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    n = 30
    scores = pd.DataFrame({"album": "a", "path": [f"{i}.jpg" for i in range(n)],
                           "content_hash": [f"h{i}" for i in range(n)],
                           "sharpness_norm": np.linspace(0, 1, n),
                           "aesthetic": np.linspace(1, 0, n)})
    calls = []

    def synthetic():
        calls.append(1)
        return _fake_benchmark_frame()

    # no ratings: the synthetic pairs
    p = tuning.gather_preferences(scores, root, synthetic=synthetic)
    assert p.source == "synthetic" and calls and any("no ratings" in s for s in p.notes)
    # enough ratings in a labels CSV: the ratings, aesthetic dropped with use_clip=False
    labels = tmp_path / "l.csv"
    labels.write_text("file,rating\n" + "".join(f"{i}.jpg,{i % 5 + 1}\n" for i in range(n)))
    p = tuning.gather_preferences(scores, root, labels_csv=labels, use_clip=False, synthetic=synthetic)
    assert p.source == "ratings" and p.objective == tuning.OBJECTIVE_RATINGS
    assert "aesthetic" not in p.scores.columns
    with_clip = tuning.gather_preferences(scores, root, labels_csv=labels, synthetic=synthetic)
    assert "aesthetic" in with_clip.scores
    # an explicit labels CSV with too few pairs is an error, not a silent fallback
    labels.write_text("file,rating\n0.jpg,5\n1.jpg,1\n")
    with pytest.raises(tuning.TuningError, match="at least 5"):
        tuning.gather_preferences(scores, root, labels_csv=labels, synthetic=synthetic)
    labels.write_text("file,rating\nelsewhere.jpg,5\n")
    with pytest.raises(tuning.TuningError, match="matched none"):
        tuning.gather_preferences(scores, root, labels_csv=labels, synthetic=synthetic)
    # too few ratings found in the files: a note, then the synthetic pairs
    (root / "a" / "0.jpg.xmp").write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="5"/></rdf:RDF></x:xmpmeta>')
    p = tuning.gather_preferences(scores, root, synthetic=synthetic)
    assert p.source == "synthetic" and any("1 from sidecar" in s for s in p.notes)


def _result(heldout_default, heldout_tuned, study="s1"):
    return tuning.TuneResult(
        study_name=study, storage="sqlite:///x", objective=tuning.OBJECTIVE_SYNTHETIC, source="synthetic",
        best_weights={"sharpness": 0.6, "exposure": 0.4}, tuned_keys=["sharpness", "exposure"], n_trials=3,
        n_new_trials=3, tune_default=0.7, tune_tuned=0.8, heldout_default=heldout_default,
        heldout_tuned=heldout_tuned, n_pairs_tune=10, n_pairs_heldout=10, n_pairs_dropped=0, keys_tune=["a"],
        keys_heldout=["b"], history=pd.DataFrame({"number": [0], "value": [0.8], "best_so_far": [0.8]}),
        seconds=0.1)


def test_accepted_weights_follow_the_latest_run_and_the_heldout_rule():
    conn = duckdb.connect(":memory:")
    assert tuning.accepted_weights(conn) is None  # never tuned (no table)
    tuning.save_result(conn, _result(0.70, 0.75, "good"))
    w = tuning.accepted_weights(conn)
    assert w is not None and w.source == "tuned:good" and w.values == {"sharpness": 0.6, "exposure": 0.4}
    assert w.weights_id == _result(0.70, 0.75, "good").weights.weights_id
    tuning.save_result(conn, _result(0.70, 0.70, "equal"))
    assert tuning.accepted_weights(conn).source == "tuned:equal"  # not worse = used
    tuning.save_result(conn, _result(0.70, 0.69, "worse"))
    assert tuning.accepted_weights(conn) is None  # the latest run lost held-out: defaults, no older run
    tuning.save_result(conn, _result(math.nan, 0.9, "unknown"))
    assert tuning.accepted_weights(conn) is None
    assert conn.execute("SELECT count(*) FROM tuned_weights").fetchone()[0] == 4

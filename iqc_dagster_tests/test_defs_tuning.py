"""The tuned_weights asset on an ephemeral instance: tunes on ratings, stores the result, and later
rankings use the tuned weights (or the defaults when tuning did not help held-out)."""

import json
from pathlib import Path

import cv2
import dagster as dg
import duckdb
import pandas as pd
import pytest

from iqc_dagster.bench import degrade
from iqc_dagster.core import fusion, store, tuning
from iqc_dagster.core.clip import ClipSettings
from iqc_dagster.core.config import Settings
from iqc_dagster.definitions import stage_defs
from iqc_dagster.defs.resources import make_resources
from iqc_dagster.runner import materialize_album
from iqc_dagster.defs.tuning import HISTORY_PNG, RESULT_JSON, tuned_weights
from iqc_dagster.runner import tuning_summary as summary_of
from iqc_dagster_tests.conftest import real_photo, save_jpeg

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "grace_hopper"]


VARIANTS = {"orig": lambda im: im, "blur": lambda im: degrade.gaussian_blur(im, 2),
            "dark": lambda im: degrade.underexpose(im, 1), "bright": lambda im: degrade.overexpose(im, 1),
            "flat": lambda im: degrade.reduce_contrast(im, 1),
            "flatter": lambda im: degrade.reduce_contrast(im, 2)}


def make_album(tmp_path, photos=PHOTOS, variants=tuple(VARIANTS)):
    """An album of real photos x variants (small, so features are quick) and settings with CLIP off."""
    album = tmp_path / "photos" / "rated"
    for name in photos:
        img = real_photo(name)
        s = 256 / max(img.shape[:2])
        size = (round(img.shape[1] * s), round(img.shape[0] * s))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        for v in variants:
            save_jpeg(VARIANTS[v](img), album / f"{name}_{v}.jpg")
    return Settings(photo_root=str(album.parent), db_path=str(tmp_path / "iqc.duckdb"),
                    output_dir=str(tmp_path / "out"), clip=ClipSettings(enabled=False))


@pytest.fixture
def rated(tmp_path):
    """5 real photos x 6 variants (30 photos) and where the labels CSV goes."""
    return make_album(tmp_path), tmp_path / "labels.csv"


@pytest.fixture
def small(tmp_path):
    """2 real photos x 3 variants."""
    return make_album(tmp_path, PHOTOS[:2], ("orig", "blur", "flat"))


def write_contrast_labels(settings, labels: Path) -> None:
    """A user who only cares about contrast: stars 1..5 = quintile of the measured contrast score."""
    with duckdb.connect(settings.db_path, read_only=True) as c:
        scores = store.album_scores(c, "rated")
    stars = pd.qcut(scores["contrast_norm"].rank(method="first"), 5, labels=[1, 2, 3, 4, 5]).astype(int)
    pd.DataFrame({"file": scores["path"], "rating": stars}).to_csv(labels, index=False)


def _tune(settings, instance, **config):
    return dg.materialize(stage_defs().assets, selection=[tuned_weights], instance=instance,
                          resources=make_resources(settings),
                          run_config={"ops": {"tuned_weights": {"config": config}}})


def _ranked(result):
    key = dg.AssetKey("ranked_photos")
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key == key]
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def test_tuned_weights_from_ratings_are_used_by_the_next_ranking(rated):
    settings, labels = rated
    with dg.DagsterInstance.ephemeral() as instance:
        first = materialize_album("rated", settings, instance=instance, log_level="WARNING")
        assert _ranked(first)["weights_source"] == "default"
        write_contrast_labels(settings, labels)
        result = _tune(settings, instance, n_trials=40, labels_csv=str(labels), use_clip=False)
        assert result.success
        s = summary_of(result)
        assert s["objective"] == tuning.OBJECTIVE_RATINGS and s["n_trials"] == 40
        assert s["n_pairs_tune"] >= 5 and s["n_pairs_heldout"] >= 5
        assert s["heldout_tuned"] >= s["heldout_default"] and s["used_for_ranking"]
        # contrast alone decides these ratings: tuning beats the defaults held-out and gives contrast a
        # larger share than the defaults do (test_core_tuning checks "most of the weight" on a cleaner
        # problem)
        assert s["heldout_tuned"] > s["heldout_default"]
        # (penalty-only scores, eyes and face focus, never lift a photo: their weight is left out of the
        # shares, like aesthetic's)
        other = {"aesthetic", *fusion.PENALTY_ONLY}
        tuned = {k: v for k, v in s["best_weights"].items() if k not in other}
        default = {k: v for k, v in fusion.DEFAULT_WEIGHTS.items() if k not in other}
        assert tuned["contrast"] / sum(tuned.values()) > default["contrast"] / sum(default.values())
        out = Path(settings.output_dir) / "tuning"
        assert (out / HISTORY_PNG).read_bytes()[:4] == b"\x89PNG"
        assert json.loads((out / RESULT_JSON).read_text())["weights_id"] == s["weights_id"]
        assert (out / tuning.STORAGE_FILE).exists()
        mat = result.get_asset_materialization_events()[-1].materialization
        md = {k: v.value for k, v in mat.metadata.items()}
        assert md["history_png"] == str((out / HISTORY_PNG).resolve())  # linked, not embedded in the event
        assert not any("base64" in str(v) for v in md.values())

        later = materialize_album("rated", settings, instance=instance, log_level="WARNING")
    md = _ranked(later)
    assert md["weights_id"] == s["weights_id"] and md["weights_source"] == f"tuned:{s['study']}"
    csv = pd.read_csv(Path(settings.output_dir) / "csvs" / "rated.csv")
    assert set(csv["weights_id"]) == {s["weights_id"]}
    with duckdb.connect(settings.db_path, read_only=True) as c:
        assert {r[0] for r in c.execute("SELECT weights_id FROM rankings WHERE album = 'rated'").fetchall()} \
            == {s["weights_id"]}
        row = c.execute("SELECT source, weights FROM weights WHERE weights_id = ?",
                        [s["weights_id"]]).fetchone()
        assert row[0] == f"tuned:{s['study']}" and json.loads(row[1]) == s["best_weights"]
        stored = c.execute("SELECT objective, heldout_default, heldout_tuned FROM tuned_weights").fetchall()
    assert stored == [(tuning.OBJECTIVE_RATINGS, pytest.approx(s["heldout_default"], abs=1e-4),
                       pytest.approx(s["heldout_tuned"], abs=1e-4))]


def test_rankings_keep_the_defaults_when_the_latest_tuning_lost_held_out(small):
    settings = small
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_album("rated", settings, instance=instance, log_level="WARNING")
        worse = tuning.TuneResult(
            study_name="worse", storage="sqlite:///x", objective=tuning.OBJECTIVE_RATINGS, source="ratings",
            best_weights={"sharpness": 0.1, "contrast": 0.9}, tuned_keys=["sharpness", "contrast"],
            n_trials=1,
            n_new_trials=1, tune_default=0.5, tune_tuned=0.9, heldout_default=0.8, heldout_tuned=0.6,
            n_pairs_tune=9, n_pairs_heldout=9, n_pairs_dropped=0, keys_tune=[], keys_heldout=[],
            history=pd.DataFrame(), seconds=0.0)
        with duckdb.connect(settings.db_path) as c:
            tuning.save_result(c, worse)
        later = materialize_album("rated", settings, instance=instance, log_level="WARNING")
    md = _ranked(later)
    assert md["weights_source"] == "default"
    assert md["weights_id"] == fusion.Weights(dict(fusion.DEFAULT_WEIGHTS), "default").weights_id


def test_explicit_labels_with_too_few_pairs_fail_with_a_clear_message(small, tmp_path):
    settings = small
    few = tmp_path / "few.csv"
    few.write_text("file,rating\nastronaut_orig.jpg,5\nastronaut_blur.jpg,1\n")
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_album("rated", settings, instance=instance, log_level="WARNING")
        result = dg.materialize(stage_defs().assets, selection=[tuned_weights], instance=instance,
                                resources=make_resources(settings), raise_on_error=False,
                                run_config={"ops": {"tuned_weights": {"config": {"labels_csv": str(few)}}}})
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert "at least 5" in failure.step_failure_data.error.message or "at least 5" in str(
        failure.step_failure_data.user_failure_data.description)


def test_lineage_tuned_to_ranking_weights_to_ranked_photos():
    from iqc_dagster.definitions import defs

    g = defs.get_repository_def().asset_graph
    assert dg.AssetKey("tuned_weights") in g.get(dg.AssetKey("ranking_weights")).parent_keys
    assert dg.AssetKey("ranking_weights") in g.get(dg.AssetKey("ranked_photos")).parent_keys
    node = g.get(dg.AssetKey("tuned_weights"))
    assert dg.AssetKey("normalized_features") in node.parent_keys
    assert node.partitions_def is None and not node.pools  # minutes of Optuna: outside the single-writer pool

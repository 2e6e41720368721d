"""`iqc tune` run as a user would run it (a subprocess): one JSON line on stdout, logs on stderr."""

import json
import os
import subprocess
import sys


def iqc(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    env.pop("IQC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "iqc_dagster.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_tune_prints_one_json_line_and_resumes(tmp_path, photo_root):
    env = {"IQC_PHOTO_ROOT": str(photo_root), "IQC_DB": str(tmp_path / "d.duckdb"),
           "IQC_OUTPUT_DIR": str(tmp_path / "out")}
    # no ratings under the photo root: the synthetic pairs (a small subset of the benchmark, for speed)
    r = iqc("tune", "--trials", "8", "--no-clip", "--references", "astronaut,coins",
            "--distortions", "gaussian_blur,underexpose", "--quiet", env_extra=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout
    out = json.loads(lines[0])
    assert {"best_weights", "heldout_default", "heldout_tuned", "n_trials", "objective"} <= set(out)
    assert out["objective"] == "pairwise_agreement:synthetic_degradations" and out["n_trials"] == 8
    assert 0 <= out["heldout_default"] <= 1 and 0 <= out["heldout_tuned"] <= 1
    assert abs(sum(out["best_weights"].values()) - 1) < 1e-3
    # features were computed for both albums first (the album graph ran), and the result is saved
    csvs = tmp_path / "out" / "csvs"
    assert (csvs / "portraits.csv").exists() and (csvs / "travel.csv").exists()
    tuning_dir = tmp_path / "out" / "tuning"
    files = {p.name for p in tuning_dir.iterdir()}
    assert {"optuna.sqlite3", "tuned_weights.json", "tuned_weights_history.png"} <= files
    assert "Traceback" not in r.stderr

    # running again resumes the same study
    again = iqc("tune", "--trials", "3", "--no-clip", "--references", "astronaut,coins",
                "--distortions", "gaussian_blur,underexpose", "--quiet", "--album", "portraits",
                env_extra=env)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout.strip().splitlines()[-1])
    assert second["study"] == out["study"] and second["n_trials"] == 11

    # (that later rankings use the tuned weights is checked in test_defs_tuning)


def test_tune_bad_labels_is_one_line_error(tmp_path, photo_root):
    r = iqc("tune", "--labels", str(tmp_path / "missing.csv"), env_extra={"IQC_PHOTO_ROOT": str(photo_root)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("iqc tune: error:") and "does not exist" in err[0]
    assert r.stdout == ""

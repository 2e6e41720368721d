"""The ranking_quality_benchmark asset (dg.materialize, ephemeral instance) and `iqc benchmark`."""

import json
import os
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest

from iqc_dagster.defs.benchmark import ranking_quality_benchmark
from iqc_dagster.defs.resources import IQCSettings

pytest.importorskip("skimage")
pytest.importorskip("sklearn")

TINY = {"references": ["chelsea"], "sizes": [640], "distortions": ["jpeg", "gaussian_noise"], "levels": [3],
        "workers": 1}


def _materialize(tmp_path, config):
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            [ranking_quality_benchmark], instance=instance, raise_on_error=False,
            resources={"iqc": IQCSettings(photo_root=str(tmp_path / "photos"),
                                          output_dir=str(tmp_path / "out"))},
            run_config={"ops": {"ranking_quality_benchmark": {"config": config}}})


def test_asset_writes_table_and_plot_with_metadata(tmp_path):
    result = _materialize(tmp_path, TINY)
    assert result.success
    mat = result.asset_materializations_for_node("ranking_quality_benchmark")[0]
    md = {k: v.value for k, v in mat.metadata.items()}
    out = tmp_path / "out" / "benchmark"
    assert md["table_csv"] == str((out / "ranking_quality.csv").resolve())
    assert (out / "ranking_quality.png").stat().st_size > 5000
    table = pd.read_csv(out / "ranking_quality.csv").set_index("metric")
    assert table.loc["pairwise_all", "iqc:all"] == md["iqc/all/pairwise_all"]
    assert md["iqc/all/pairwise_all"] > md["seed/all/pairwise_all"]  # the seed ranks the noisy copy first
    assert md["n_images"] == 1 + 2 + 2 + 2 and md["references"] == "chelsea"
    assert "pairwise_jpeg" in md["table"] and "640" in md["by_size"]
    assert pd.read_csv(out / "ranking_quality_by_size.csv")["size"].tolist() == [640, 640]


def test_asset_fails_with_a_clear_message_on_an_unknown_reference(tmp_path):
    result = _materialize(tmp_path, {**TINY, "references": ["nope"]})
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures and "unknown reference 'nope'" in failures[0].step_failure_data.error.message


def test_asset_is_in_the_code_location_in_group_evaluation():
    from iqc_dagster.definitions import defs

    node = defs.get_repository_def().asset_graph.get(dg.AssetKey("ranking_quality_benchmark"))
    assert node.group_name == "evaluation" and node.partitions_def is None


def _iqc(*args):
    env = {k: v for k, v in os.environ.items() if k != "IQC_DEBUG"}
    return subprocess.run([sys.executable, "-m", "iqc_dagster.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_prints_json_and_writes_files(tmp_path):
    r = _iqc("benchmark", "--references", "chelsea", "--sizes", "640", "--distortions", "jpeg", "--json",
             "--output-dir", str(tmp_path), "--work-dir", str(tmp_path / "work"))
    assert r.returncode == 0, r.stderr
    payload = json.loads(r.stdout)
    assert payload["references"] == ["chelsea"]
    assert 0.0 <= payload["metrics"]["iqc:all"]["pairwise_jpeg"] <= 1.0
    assert payload["by_size"][0]["size"] == 640
    assert (tmp_path / "work" / "rq2" / "640px" / "chelsea__jpeg3.jpg").exists()  # kept for the next run
    assert (tmp_path / "benchmark" / "ranking_quality.csv").exists()


def test_cli_unknown_reference_is_one_line_error():
    r = _iqc("benchmark", "--references", "nope", "--no-write")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown reference(s) nope" in r.stderr

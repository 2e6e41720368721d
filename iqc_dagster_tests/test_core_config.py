"""Settings from the environment: relative paths anchored to the current directory once; the code
location's path resources read through dg.EnvVar when the environment sets them."""

import os

import dagster as dg

from iqc_dagster.core import config
from iqc_dagster.core.config import Settings
from iqc_dagster.defs.resources import make_resources


def test_relative_paths_and_defaults_are_anchored_to_the_current_directory_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({config.ENV_OUTPUT_DIR: "out", config.ENV_DB: "/abs/x.duckdb"})
    assert s.photo_root == str(tmp_path / "data" / "albums")
    assert s.output_dir == str(tmp_path / "out")
    assert s.db_path == "/abs/x.duckdb"  # absolute paths kept as given
    monkeypatch.chdir(tmp_path.parent)  # a later change of directory does not move the files
    assert s.output_dir == str(tmp_path / "out")
    assert config.anchor(":memory:") == ":memory:"


def test_code_location_resources_read_absolute_paths_through_env_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.ENV_PHOTO_ROOT, str(tmp_path / "albums"))
    monkeypatch.setenv(config.ENV_DB, str(tmp_path / "d.duckdb"))
    monkeypatch.setenv(config.ENV_OUTPUT_DIR, "rel-out")
    r = make_resources()
    assert isinstance(r["iqc"].photo_root, dg.EnvVar) and r["iqc"].photo_root == config.ENV_PHOTO_ROOT
    assert isinstance(r["duckdb"].database, dg.EnvVar) and r["duckdb"].database == config.ENV_DB
    assert r["iqc"].output_dir == str(tmp_path / "rel-out")  # relative: anchored now, not by the run
    # settings passed in (iqc rank/run, tests) are used as they are
    s = Settings.from_env({})
    assert make_resources(s)["iqc"].photo_root == s.photo_root
    assert os.path.isabs(make_resources(s)["duckdb"].database)

"""`iqc perf` run as a user would run it (a subprocess), on a tiny album so it stays quick."""

import json
import os
import subprocess
import sys

from PIL import Image

from iqc_dagster.bench import perf


def test_perf_reports_the_decode_floor_the_scenarios_and_an_unchanged_rerun(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IQC_")}
    r = subprocess.run([sys.executable, "-m", "iqc_dagster.cli", "perf", "--n", "2", "--rerun-n", "3",
                        "--scenarios", "floor,tech,rerun", "--workdir", str(tmp_path), "--json"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(out) == {"floor", "tech", "rerun"}
    floor = out["floor"]
    assert floor["n_photos"] == 2 and floor["photos_per_s"] > 0 and floor["ms_per_photo_one_thread"] > 0
    tech = out["tech"]
    assert tech["n_photos"] == 2 and tech["n_computed"] == 2 and tech["clip_status"] == "off"
    assert tech["ranking_s"] > 0 and tech["peak_rss_mib"] > 0
    assert {"decode", "db_write", "feature:sharpness", "feature:faces"} <= set(tech["stage_seconds"])
    rerun = out["rerun"]
    assert rerun["n_photos"] == 3 and rerun["n_computed"] == 0  # nothing recomputed for an unchanged album
    with Image.open(next((tmp_path / "photos" / "synthetic_2").glob("*.jpg"))) as im:
        assert im.size == (4000, 3000) and im.format == "JPEG"


def test_decode_floor_times_the_pipelines_own_decode(tmp_path, monkeypatch):
    from iqc_dagster.core import imaging

    perf.make_album(tmp_path / "a", 2, seed=3, width=800, height=600)
    calls = []
    real = imaging.decode
    monkeypatch.setattr(imaging, "decode", lambda p, *a, **k: calls.append(p.name) or real(p, *a, **k))
    floor = perf.decode_floor(tmp_path / "a", workers=2, single_sample=2)
    assert floor["n_photos"] == 2 and floor["workers"] == 2
    assert floor["photos_per_s"] > 0 and floor["wall_s"] > 0
    # one warm-up, the one-thread sample, then every photo once in the pool
    assert sorted(calls) == sorted(["IMG_00000.jpg"] * 3 + ["IMG_00001.jpg"] * 2)


def test_old_name_bench_still_works_and_says_it_was_renamed(capsys):
    from iqc_dagster.cli import build_parser, main

    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0
    captured = capsys.readouterr()
    assert "renamed to `iqc perf`" in captured.err and "--rerun-n" in captured.out
    assert " bench " not in build_parser().format_help()  # hidden from the command list


def test_perf_counts_every_step_of_the_album_job_as_ranking_report_or_check():
    """`iqc perf` splits a run's step times into ranking, checks and the report by step name: a step of
    rank_album_job missing from RANKING_STEPS would be timed as a check."""
    from iqc_dagster.bench import scenario
    from iqc_dagster.definitions import defs
    from iqc_dagster.defs import keys

    steps = set(defs.resolve_job_def(keys.RANK_ALBUM_JOB).graph.node_names())
    checks = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    others = steps - set(scenario.RANKING_STEPS) - {"evaluation_report"}
    assert set(scenario.RANKING_STEPS) <= steps
    assert all(any(s.endswith("_" + c) for c in checks) for s in others), others

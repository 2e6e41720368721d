"""Two album runs launched together, each in its own process as Dagster's run workers are, on an instance
with iqc's settings (the iqc_duckdb pool limited to 1): their analysis overlaps, and the steps that hold
the single-writer slot take turns."""

import itertools
import multiprocessing
from pathlib import Path

import dagster as dg

from iqc_dagster.cli.ui import prepare_home
from iqc_dagster.definitions import defs
from iqc_dagster.defs.keys import DUCKDB_POOL


def _run_album(home: str, album: str, settings, inside, out: str) -> None:
    """One run worker: rank ``album``; its analysis first waits until the other run's is under way too."""
    from iqc_dagster.core import analysis
    from iqc_dagster.runner import materialize_album

    real_analyze = analysis.analyze

    def analyze(tasks, **kw):
        inside.wait()  # times out (the run fails) if the two analyses cannot run at the same time
        yield from real_analyze(tasks, **kw)

    analysis.analyze = analyze
    with dg.DagsterInstance.from_config(home) as instance:
        result = materialize_album(album, settings, instance=instance, log_level="WARNING")
    Path(out).write_text(result.run_id)


def test_two_albums_launched_together_overlap_their_analysis(tmp_path, photo_root):
    from iqc_dagster.core.clip import ClipSettings
    from iqc_dagster.core.config import Settings

    settings = Settings(photo_root=str(photo_root), db_path=str(tmp_path / "iqc.duckdb"),
                        output_dir=str(tmp_path / "output"), clip=ClipSettings(enabled=False))
    home = str(prepare_home(tmp_path / "dagster_home"))  # the dagster.yaml `iqc ui` writes
    ctx = multiprocessing.get_context("spawn")
    inside = ctx.Barrier(2, timeout=120)
    albums = ("portraits", "travel")
    with dg.DagsterInstance.from_config(home) as instance:
        instance.add_dynamic_partitions("albums", list(albums))
    procs = [ctx.Process(target=_run_album, args=(home, a, settings, inside, str(tmp_path / f"{a}.run")))
             for a in albums]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    with dg.DagsterInstance.from_config(home) as instance:
        assert instance.event_log_storage.get_concurrency_info(DUCKDB_POOL).slot_count == 1
        spans = {a: {s.step_key: (s.start_time, s.end_time)
                     for s in instance.get_run_step_stats((tmp_path / f"{a}.run").read_text())} for a in albums}

    a, b = spans["portraits"]["analyze_photos"], spans["travel"]["analyze_photos"]
    assert a[0] < b[1] and b[0] < a[1]  # the two analyses ran at the same time
    pooled = {node.key.to_user_string() for node in defs.get_repository_def().asset_graph.asset_nodes
              if DUCKDB_POOL in (node.pools or ())}
    assert {"normalized_features", "duplicate_groups", "ranking_weights", "ranked_photos"} <= pooled
    for (s1, t1), (s2, t2) in itertools.product(
            [v for k, v in spans["portraits"].items() if k in pooled],
            [v for k, v in spans["travel"].items() if k in pooled]):
        assert t1 <= s2 or t2 <= s1  # one slot: the writing steps of the two runs never overlapped

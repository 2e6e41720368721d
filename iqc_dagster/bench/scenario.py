"""One ``iqc perf`` scenario, run in its own process so its peak memory can be read: ranks an album with
the real asset graph (dg.materialize, in-process executor) and prints a JSON line of timings."""

import dataclasses
import json
import os
import sys
import time

T_START = time.perf_counter()

import dagster as dg  # noqa: E402

from iqc_dagster.core.config import Settings  # noqa: E402
from iqc_dagster.runner import materialize_album  # noqa: E402

#: Steps that make the ranking; the evaluation report is timed on its own.
RANKING_STEPS = ("image_inventory", "analyze_photos", "aesthetic_scores", "normalized_features",
                 "duplicate_groups", "ranking_weights", "ranked_photos")


def run_scenario(photo_root: str, album: str, db_path: str, output_dir: str) -> dict:
    t_import = time.perf_counter() - T_START
    settings = dataclasses.replace(Settings.from_env(), photo_root=photo_root, db_path=db_path, output_dir=output_dir)
    with dg.DagsterInstance.ephemeral() as instance:
        t0 = time.perf_counter()
        result = materialize_album(album, settings, instance=instance, log_level="WARNING")
        wall = time.perf_counter() - t0
        steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(result.run_id)}
    md = {}
    for m in result.get_asset_materialization_events():
        md[m.asset_key.to_user_string()] = {k: v.value for k, v in m.materialization.metadata.items()}
    ranking_steps = sum(v for k, v in steps.items() if k in RANKING_STEPS)
    check_steps = sum(v for k, v in steps.items() if k not in RANKING_STEPS and k != "evaluation_report")
    report_s = steps.get("evaluation_report", 0.0)
    tf = md.get("technical_features", {})
    ce = md.get("clip_embeddings", {})
    return {
        "n_photos": tf.get("n_photos"),
        "n_computed": tf.get("n_computed"),
        "n_embedded": ce.get("n_embedded"),
        "clip_status": ce.get("status"),
        "wall_s": wall,
        "ranking_s": wall - report_s,  # everything up to the ranked CSV, checks and Dagster included
        "report_s": report_s,
        "steps_s": steps,
        "checks_s": check_steps,
        "dagster_overhead_s": wall - ranking_steps - check_steps - report_s,
        "stage_seconds": tf.get("stage_seconds", {}),
        "import_s": t_import,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _peak_rss_mib() -> float | None:
    """This process's own high-water mark (VmHWM). Not ru_maxrss: Linux carries that over from the parent
    across fork + exec, so a child would report its parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


if __name__ == "__main__":
    root, album, db, out = sys.argv[1:5]
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    print(json.dumps(run_scenario(root, album, db, out)))

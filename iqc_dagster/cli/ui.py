"""``iqc ui``: start the Dagster UI (``dagster dev``) on 127.0.0.1 with a persistent instance."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def instance_yaml() -> str:
    """The ``dagster.yaml`` iqc needs (:data:`~iqc_dagster.defs.resources.INSTANCE_SETTINGS`, as shipped at
    the repository root for plain ``dagster dev``)."""
    import json

    from iqc_dagster.defs.resources import INSTANCE_SETTINGS

    # JSON is YAML: no YAML writer needed
    return ("# Written by `iqc ui`: the short steps that write the DuckDB file claim the one slot of the pool\n"
            "# iqc_duckdb (the only pool), so runs of different albums take turns for the file.\n"
            + json.dumps(INSTANCE_SETTINGS, indent=2) + "\n")


def add_parser(sub) -> None:
    p = sub.add_parser("ui", help="start the Dagster UI on 127.0.0.1",
                       description="Run `dagster dev` for the iqc code location, bound to 127.0.0.1. "
                                   "DAGSTER_HOME defaults to ./.dagster_home so run history persists.")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--dagster-home", default=os.environ.get("DAGSTER_HOME") or ".dagster_home")
    p.set_defaults(func=run)


def prepare_home(home: str | os.PathLike) -> Path:
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(instance_yaml())
    return home


def run(args) -> int:
    home = prepare_home(args.dagster_home)
    exe = shutil.which("dagster", path=os.path.dirname(sys.executable)) or shutil.which("dagster") or "dagster"
    cmd = [exe, "dev", "-h", "127.0.0.1", "-p", str(args.port), "-m", "iqc_dagster.definitions"]
    print(f"DAGSTER_HOME={home}\n$ {' '.join(cmd)}", flush=True)
    os.environ["DAGSTER_HOME"] = str(home)
    os.execv(exe, cmd)
    return 0  # not reached

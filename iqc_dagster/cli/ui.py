"""``iqc ui``: start the Dagster UI (``dagster dev``) on 127.0.0.1 with a persistent instance."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

INSTANCE_YAML = """\
# Written by `iqc ui`. Every asset that writes the DuckDB file is in the pool "iqc_duckdb";
# a limit of 1 means runs of different albums queue for it instead of fighting over the file lock.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


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
        cfg.write_text(INSTANCE_YAML)
    return home


def run(args) -> int:
    home = prepare_home(args.dagster_home)
    exe = shutil.which("dagster", path=os.path.dirname(sys.executable)) or shutil.which("dagster") or "dagster"
    cmd = [exe, "dev", "-h", "127.0.0.1", "-p", str(args.port), "-m", "iqc_dagster.definitions"]
    print(f"DAGSTER_HOME={home}\n$ {' '.join(cmd)}", flush=True)
    os.environ["DAGSTER_HOME"] = str(home)
    os.execv(exe, cmd)
    return 0  # not reached

"""Crash safety and concurrency, with real processes as a user would run them."""

import os
import signal
import subprocess
import sys
import time

import duckdb
import numpy as np
import pandas as pd

from iqc_dagster_tests.conftest import real_photo, save_jpeg


def _album(folder, n, seed=0):
    rng = np.random.default_rng(seed)
    names = ["astronaut", "coffee", "chelsea", "rocket"]
    for i in range(n):
        img = real_photo(names[i % len(names)])
        y, x = rng.integers(0, 40, size=2)
        save_jpeg(np.ascontiguousarray(img[y:y + 400, x:x + 400]), folder / f"p{i:03d}.jpg", quality=80)
    return folder


def _cmd(folder, db, out):
    return [sys.executable, "-m", "iqc_dagster.cli", "rank", "--input-dir", str(folder), "--db", str(db),
            "--output-dir", str(out)]


def _counts(db, album):
    with duckdb.connect(str(db), read_only=True) as c:
        return {t: c.execute(f"SELECT count(*), count(DISTINCT path) FROM {t} WHERE album = ?", [album]).fetchone()
                for t in ("photos", "rankings")}


def test_killed_run_then_rerun_has_one_row_per_photo(tmp_path):
    folder = _album(tmp_path / "big", 60)
    db, out = tmp_path / "iqc.duckdb", tmp_path / "out"
    proc = subprocess.Popen(_cmd(folder, db, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # wait until feature analysis has started, then kill hard
        if "to analyse" in line or time.monotonic() > deadline:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "csvs" / "big.csv").exists()  # it really died before finishing

    r = subprocess.run(_cmd(folder, db, out), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert _counts(db, "big") == {"photos": (60, 60), "rankings": (60, 60)}
    with duckdb.connect(str(db), read_only=True) as c:
        dup = c.execute("SELECT count(*) FROM (SELECT content_hash, feature, version FROM feature_values "
                        "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
    assert dup == 0
    assert len(pd.read_csv(out / "csvs" / "big.csv")) == 60


def test_two_albums_ranked_at_once_share_the_database(tmp_path):
    a = _album(tmp_path / "alpha", 24, seed=1)
    b = _album(tmp_path / "beta", 24, seed=2)
    db, out = tmp_path / "iqc.duckdb", tmp_path / "out"
    procs = [subprocess.Popen(_cmd(f, db, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in (a, b)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for rc, err in results:
        assert rc == 0, err
        assert "Could not set lock" not in err
    assert _counts(db, "alpha")["rankings"] == (24, 24)
    assert _counts(db, "beta")["rankings"] == (24, 24)


def test_database_locked_by_another_program_is_one_clear_line(tmp_path, photo_root):
    db = tmp_path / "held.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); time.sleep(120)", str(db)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        t0 = time.monotonic()
        r = subprocess.run(_cmd(photo_root / "travel", db, tmp_path / "out"), capture_output=True, text=True,
                           timeout=120, env={**os.environ, "IQC_DB_LOCK_TIMEOUT": "2", "IQC_CLIP": "0"})
        elapsed = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr and 'File "' not in r.stderr
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1 and errors[0] == err[-1] and err[-1].startswith("iqc rank: error:")
    assert f"is locked by process {holder.pid}" in err[-1] and "IQC_DB" in err[-1]
    assert elapsed < 60  # bounded wait, not DuckDB's default retry ladder

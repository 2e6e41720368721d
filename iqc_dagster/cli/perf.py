"""``iqc perf`` (formerly ``iqc bench``): throughput and peak memory of the album graph on synthetic 12-megapixel photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from iqc_dagster.cli import CLIError


def add_parser(sub) -> None:
    p = sub.add_parser("perf", help="speed and memory on synthetic 12-megapixel photos",
                       description="Ranks an album of N deterministic synthetic 12 MP JPEGs with camera-like "
                                   "grain (a) with technical features only, (b) with CLIP ViT-B/32 compute "
                                   "(random weights built from CLIPConfig(): the real model's cost), (c) "
                                   "again, unchanged; each in its own process, reporting photos/s, peak "
                                   "memory and a per-stage breakdown. See docs/benchmarks.md.")
    p.add_argument("--n", type=int, default=200, help="photos in the album (default 200)")
    p.add_argument("--rerun-n", type=int, default=1000,
                   help="photos in the album for the unchanged re-run scenario (default 1000, 2 MP each)")
    p.add_argument("--scenarios", default="floor,tech,clip,rerun",
                   help="comma-separated: floor (JPEG decoding alone: the ceiling of the technical pass), "
                        "tech, clip, rerun; and raw (decode cost of a RAW file with and without an embedded "
                        "preview against the JPEG of the same shot; not in the default set)")
    p.add_argument("--raw-n", type=int, default=10,
                   help="shots for the raw scenario (default 10; each as a JPEG, a DNG with a full-size "
                        "preview and a DNG without one)")
    p.add_argument("--workdir", type=Path, default=Path(".bench"), help="albums and databases (default .bench)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def _child(root: Path, album: str, db: Path, out: Path, env: dict) -> dict:
    """Run one scenario in a fresh process on a fresh database; return its JSON (incl. peak memory)."""
    for p in (db, Path(f"{db}.wal")):
        if p.exists():
            p.unlink()
    return _spawn(root, album, db, out, env)


def _spawn(root: Path, album: str, db: Path, out: Path, env: dict) -> dict:
    """Rank ``album`` in a new process (``iqc_dagster.bench.scenario``); its JSON plus the process wall time."""
    cmd = [sys.executable, "-m", "iqc_dagster.bench.scenario", str(root), album, str(db), str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise CLIError(f"scenario failed ({album}): {stderr.strip().splitlines()[-1] if stderr.strip() else proc.returncode}")
    res = json.loads(stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t0
    return res


def _rerun(root: Path, album: str, db: Path, out: Path, env: dict) -> dict:
    first = _child(root, album, db, out, env)
    res = _spawn(root, album, db, out, env)  # same database: the second process sees an unchanged album
    res["first_run_wall_s"] = first["wall_s"]
    return res


def run(args) -> int:
    from iqc_dagster.bench import perf

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - {"floor", "tech", "clip", "rerun", "raw"}
    if unknown:
        raise CLIError(f"unknown scenario(s) {sorted(unknown)}; use floor, tech, clip, rerun, raw")
    if args.n < 1 or args.rerun_n < 1 or args.raw_n < 1:
        raise CLIError("--n, --rerun-n and --raw-n must be at least 1")
    work = args.workdir.resolve()
    root = work / "photos"
    out = work / "output"
    base_env = {"HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    results: dict[str, dict] = {}
    album = f"synthetic_{args.n}"
    if {"floor", "tech", "clip"} & set(scenarios):
        print(f"making {args.n} synthetic 12 MP photos in {root / album} (reused if present)...", file=sys.stderr)
        perf.make_album(root / album, args.n, seed=1)
    if "floor" in scenarios:
        print("decoding alone (the ceiling of the technical pass)...", file=sys.stderr)
        results["floor"] = perf.decode_floor(root / album)
    if "tech" in scenarios:
        print("(a) technical features only...", file=sys.stderr)
        results["tech"] = _child(root, album, work / "tech.duckdb", out, {**base_env, "IQC_CLIP": "0"})
    if "clip" in scenarios:
        model = work / "clip-vit-b32-random"
        if not (model / "config.json").exists():
            print("building a random-weight ViT-B/32 CLIP (benchmark only)...", file=sys.stderr)
            perf.build_random_clip(model)
        print("(b) with CLIP ViT-B/32 compute...", file=sys.stderr)
        results["clip"] = _child(root, album, work / "clip.duckdb", out,
                                 {**base_env, "IQC_CLIP": "1", "IQC_CLIP_MODEL": str(model)})
    if "rerun" in scenarios:
        ralbum = f"rerun_{args.rerun_n}"
        print(f"making {args.rerun_n} synthetic 2 MP photos in {root / ralbum} (reused if present)...", file=sys.stderr)
        perf.make_album(root / ralbum, args.rerun_n, seed=2, width=1600, height=1200)
        print("(c) first run, then the timed re-run of the unchanged album...", file=sys.stderr)
        results["rerun"] = _rerun(root, ralbum, work / "rerun.duckdb", out, {**base_env, "IQC_CLIP": "0"})
    if "raw" in scenarios:
        rawdir = root / f"raw_{args.raw_n}"
        print(f"making {args.raw_n} synthetic 12 MP shots as JPEG and DNG in {rawdir} (reused if present)...",
              file=sys.stderr)
        perf.make_raw_album(rawdir, args.raw_n)
        print("(raw) decode cost: JPEG vs DNG with a full-size preview vs DNG without one...", file=sys.stderr)
        results["raw"] = perf.raw_decode_cost(rawdir)
    if args.json:
        print(json.dumps(results, indent=None, default=float))
        return 0
    for name, r in results.items():
        n = r["n_photos"] or 0
        if name == "raw":
            print(f"== raw: {n} shots, decode on one thread: JPEG {r['jpeg_ms']:.0f} ms ({r['jpeg_mb']:.1f} MB), "
                  f"DNG with full-size preview {r['dng_preview_ms']:.0f} ms ({r['dng_preview_mb']:.1f} MB; "
                  f"{r['preview_over_jpeg']:.2f}x the JPEG), DNG without preview (half-size demosaic) "
                  f"{r['dng_no_preview_ms']:.0f} ms; DNG probe {r['dng_probe_ms']:.1f} ms")
            continue
        if name == "floor":
            print(f"== floor: {n} photos decoded and nothing else, {r['workers']} threads: "
                  f"{r['photos_per_s']:.1f} photos/s ({r['ms_per_photo_one_thread']:.0f} ms per photo on one "
                  f"thread)")
            continue
        print(f"== {name}: {n} photos")
        print(f"   ranking (inventory -> ranked CSV, checks and Dagster included): {r['ranking_s']:.2f} s "
              f"= {n / r['ranking_s']:.1f} photos/s" if r["ranking_s"] > 0 else "")
        print(f"   evaluation report: {r['report_s']:.2f} s; Dagster outside steps: {r['dagster_overhead_s']:.2f} s; "
              f"checks: {r['checks_s']:.2f} s; process start + imports: {r['import_s']:.2f} s")
        print(f"   peak memory (RSS): {r['peak_rss_mib']:.0f} MiB")
        steps = ", ".join(f"{k} {v:.2f}" for k, v in r["steps_s"].items() if v >= 0.05)
        print(f"   steps (s): {steps}")
        if r["stage_seconds"]:
            print("   analysis stages (thread-s): " + ", ".join(f"{k} {v:.2f}" for k, v in r["stage_seconds"].items()))
    return 0

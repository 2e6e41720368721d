"""CLIP embedding throughput on this machine (a benchmark, not a test): ``python -m iqc_dagster.bench.clip_speed``.

A full-size ViT-B/32 is built from ``CLIPConfig()`` defaults with random weights: the same architecture
and compute as ``openai/clip-vit-base-patch32``, so the figures hold for the real model, and nothing is
downloaded. Three measurements at each batch size:

* ``forward``   — bare ``get_image_features`` on ready 3 x 224 x 224 tensors, under ``inference_mode``;
* ``stage``     — what ``clip_embeddings`` does per batch after the shared decode: CLIP preprocessing of
                  decoded photos (long side 1024, in the decode thread pool) + forward + L2 normalisation,
                  through the same :class:`~iqc_dagster.core.clip.LoadedClip` code as the pipeline;
* ``preprocess``— preprocessing alone, per image, single thread.

Each figure is the best of ``--repeats`` timed runs after a warm-up run: the development machine is
shared, and the fastest run is the one least disturbed by other processes.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from iqc_dagster.core import analysis, imaging
from iqc_dagster.core import clip as clipcore

def sample_files(folder: str | Path | None = None) -> list[Path]:
    """The photos under ``folder`` (default: the configured photo root, ``$IQC_PHOTO_ROOT`` or
    ``data/albums`` from the current directory; not a path inside the installed package)."""
    from iqc_dagster.core.config import Settings

    root = Path(folder if folder is not None else Settings.from_env().photo_root)
    return sorted(p for p in root.rglob("*") if imaging.is_image_name(p.name)) if root.is_dir() else []


def _photos(n: int, samples: str | Path | None = None) -> list[np.ndarray]:
    """``n`` decoded photos (the shared decode: upright RGB, long side <= 1024), sample albums cycled."""
    files = sample_files(samples)
    if files:
        decoded = [imaging.decode(p).rgb for p in files]
    else:  # no sample data: synthetic 1024 x 683 noise (same pixel count as a typical decode)
        rng = np.random.default_rng(0)
        decoded = [rng.integers(0, 256, (683, 1024, 3), dtype=np.uint8) for _ in range(8)]
    return [decoded[i % len(decoded)] for i in range(n)]


def _best_rate(fn, n_images: int, repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN kernels)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_images / min(times)


def _random_clip(precision: str = "auto") -> "clipcore.LoadedClip":
    """A full-size ViT-B/32 from ``CLIPConfig()`` defaults with random weights (benchmark only), on CPU."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    torch.set_num_threads(clipcore.torch_threads())
    model = CLIPModel(CLIPConfig()).eval()
    source = clipcore.ModelSource("ready", "CLIPConfig()", model_id="bench", preprocess=clipcore.Preprocess())
    return clipcore.LoadedClip(source=source, model=model, tokenizer=None, device="cpu",
                               precision=clipcore.resolve_precision(precision, "cpu"))


def run(batch_sizes=(1, 8, 32), n_images: int = 64, repeats: int = 3, workers: int | None = None,
        precision: str = "auto", samples: str | Path | None = None) -> list[dict]:
    import torch

    loaded = _random_clip(precision)
    bf16 = loaded.precision == "bf16"
    photos = _photos(n_images, samples)
    pool = ThreadPoolExecutor(max_workers=workers or analysis.default_workers())
    rows = []
    t0 = time.perf_counter()
    for p in photos[:16]:
        clipcore.preprocess(p)
    prep_ms = (time.perf_counter() - t0) / 16 * 1000
    for bs in batch_sizes:
        x = torch.randn(bs, 3, 224, 224)
        n_fw = max(bs, (n_images // bs) * bs)

        def forward():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                for _ in range(n_fw // bs):
                    loaded.model.get_image_features(pixel_values=x)

        def stage():
            for i in range(0, n_images, bs):
                arrays = list(pool.map(loaded.prepare, photos[i:i + bs]))
                loaded.embed_images(arrays, batch_size=bs)

        rows.append({"batch_size": bs, "forward_img_s": _best_rate(forward, n_fw, repeats),
                     "stage_img_s": _best_rate(stage, n_images, repeats), "preprocess_ms": prep_ms})
    pool.shutdown()
    return rows


def pipeline(n_images: int = 128, batch_size: int = 32, precision: str = "auto",
             samples: str | Path | None = None) -> dict:
    """The whole ``analyze_photos`` pass without the database: decode + technical features + CLIP
    preparation in the thread pool, CLIP embedding in the caller, per 64-photo batch; images/s."""
    from iqc_dagster.core import features as feat

    loaded = _random_clip(precision)
    files = sample_files(samples)
    if not files:
        raise SystemExit(f"no photos under {samples or 'the photo root'}: pass --samples DIR")
    names = tuple(feat.FEATURES)

    def tasks(clip: bool):
        return [analysis.PhotoTask(content_hash=str(i), path=files[i % len(files)], rel_path=str(i),
                                   features=names, want_clip=clip) for i in range(n_images)]

    def one(clip: bool, prefetch: bool) -> float:
        t0 = time.perf_counter()
        for b in analysis.analyze(tasks(clip), clip_prepare=loaded.prepare if clip else None, prefetch=prefetch):
            if b.clip_inputs:
                loaded.embed_images([a for _, a in b.clip_inputs], batch_size)
        return n_images / (time.perf_counter() - t0)

    one(True, True)  # warm-up
    return {"features_only": one(False, False), "features_clip_prefetch": one(True, True),
            "features_clip_no_prefetch": one(True, False)}


def main(argv=None) -> int:
    import os

    p = argparse.ArgumentParser(prog="python -m iqc_dagster.bench.clip_speed", description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--images", type=int, default=64, help="images per timed run (default 64)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", choices=clipcore.PRECISIONS, default="auto",
                   help="image-tower arithmetic, as the clip resource's precision (default auto)")
    p.add_argument("--samples", metavar="DIR",
                   help="photos to decode (default: $IQC_PHOTO_ROOT or data/albums; synthetic noise when none)")
    p.add_argument("--pipeline", action="store_true",
                   help="also time the whole analysis pass (decode + features + CLIP), with and without prefetch")
    args = p.parse_args(argv)
    import torch

    rows = run(tuple(int(b) for b in args.batch_sizes.split(",")), args.images, args.repeats,
               precision=args.precision, samples=args.samples)
    print(f"torch {torch.__version__}, {clipcore.torch_threads()} threads, {os.cpu_count()} CPUs, "
          f"{clipcore.resolve_precision(args.precision, 'cpu')}; "
          f"ViT-B/32 from CLIPConfig() (random weights), {args.images} images/run, best of {args.repeats}")
    print("| batch | bare forward (img/s) | embedding stage incl. preprocessing (img/s) |")
    print("|------:|---------------------:|--------------------------------------------:|")
    for r in rows:
        print(f"| {r['batch_size']:>5} | {r['forward_img_s']:>20.1f} | {r['stage_img_s']:>43.1f} |")
    print(f"preprocessing alone: {rows[0]['preprocess_ms']:.1f} ms/image (one thread, 1024-px decode -> 224 crop)")
    if args.pipeline:
        r = pipeline(args.images, precision=args.precision, samples=args.samples)
        print(f"whole analysis pass, {args.images} photos: features only {r['features_only']:.1f} img/s; "
              f"features + CLIP {r['features_clip_prefetch']:.1f} img/s with prefetch, "
              f"{r['features_clip_no_prefetch']:.1f} img/s without")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

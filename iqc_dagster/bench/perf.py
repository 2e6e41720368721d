"""Synthetic camera-like albums for the performance benchmark (``iqc perf``), deterministic by seed.

Each photo is a 12-megapixel (4000 x 3000) JPEG: a smooth random scene (low-frequency colour fields,
shapes with hard edges, fine texture) with camera-like grain (signal-dependent Gaussian noise, slightly
stronger in the blue channel), encoded at quality 90 like a phone or compact camera. No dataset or
download is needed, so the benchmark runs anywhere.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

MANIFEST = ".iqc-bench.json"  # written beside (not inside) the album folder


def synthetic_photo(seed: int, width: int = 4000, height: int = 3000) -> np.ndarray:
    """One deterministic H x W x 3 uint8 scene with grain."""
    rng = np.random.default_rng(seed)
    small = rng.random((6, 8, 3)).astype(np.float32)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)  # smooth colour fields
    img = np.clip(img * 200 + 20, 0, 255)
    for _ in range(12):  # objects with hard edges
        c = tuple(float(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            cv2.ellipse(img, (x, y), (int(rng.integers(80, 700)), int(rng.integers(80, 700))),
                        float(rng.integers(0, 180)), 0, 360, c, -1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(100, 900)), y + int(rng.integers(100, 900))), c, -1)
    texture = cv2.resize(rng.random((height // 8, width // 8)).astype(np.float32), (width, height),
                         interpolation=cv2.INTER_LINEAR)
    img += (texture[..., None] - 0.5) * 30
    sigma = 2.0 + 0.02 * img  # signal-dependent grain
    grain = rng.standard_normal((height, width, 1), dtype=np.float32)
    img += grain * sigma + rng.standard_normal((height, width, 3), dtype=np.float32) * [1.0, 1.0, 1.6]
    return np.clip(img, 0, 255).astype(np.uint8)


def make_album(folder: str | os.PathLike, n: int, *, seed: int = 0, width: int = 4000, height: int = 3000,
               quality: int = 90, workers: int | None = None) -> Path:
    """Write ``n`` synthetic JPEGs into ``folder`` (reused when already there with the same parameters)."""
    folder = Path(folder)
    params = {"n": n, "seed": seed, "width": width, "height": height, "quality": quality, "v": 1}
    manifest = folder.parent / f"{folder.name}{MANIFEST}"
    if manifest.exists() and json.loads(manifest.read_text()) == params and \
            len(list(folder.glob("*.jpg"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jpg"):
        old.unlink()

    def one(i: int) -> None:
        img = synthetic_photo(seed * 100_003 + i, width, height)
        Image.fromarray(img).save(folder / f"IMG_{i:05d}.jpg", format="JPEG", quality=quality)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(one, range(n)))
    manifest.write_text(json.dumps(params))
    return folder


def decode_floor(folder: str | os.PathLike, *, workers: int | None = None, single_sample: int = 20) -> dict:
    """The ceiling decoding alone puts on the technical pass: every photo of ``folder`` run through the
    analysis pool (:func:`iqc_dagster.core.analysis.analyze`) with no feature to measure, so it is decoded
    exactly as the pipeline does and nothing else. Returns photos/s for the whole album, and ms per photo
    on one thread (first ``single_sample`` photos, after one warm-up)."""
    import time

    from iqc_dagster.core import analysis, imaging

    paths = sorted(Path(folder).glob("*.jpg"))
    if not paths:
        raise ValueError(f"no JPEGs in {folder}")
    workers = workers or analysis.default_workers()
    imaging.decode(paths[0])
    sample = paths[:single_sample]
    t0 = time.perf_counter()
    for p in sample:
        imaging.decode(p)
    one = (time.perf_counter() - t0) / len(sample)
    tasks = [analysis.PhotoTask(content_hash=str(i), path=p, rel_path=p.name, features=())
             for i, p in enumerate(paths)]
    t0 = time.perf_counter()
    for _ in analysis.analyze(tasks, workers=workers):
        pass
    wall = time.perf_counter() - t0
    return {"n_photos": len(paths), "workers": workers, "photos_per_s": len(paths) / wall,
            "ms_per_photo_one_thread": one * 1000, "wall_s": wall}


def build_random_clip(dest: str | os.PathLike, *, crop: int = 224, seed: int = 0, vision: dict | None = None,
                      text: dict | None = None, projection_dim: int = 512) -> Path:
    """Save a randomly initialised CLIP (model, byte-level tokenizer, processor) to ``dest``.

    For benchmarks and tests only: with the default configuration it has exactly the compute of
    ViT-B/32 (``CLIPConfig()`` defaults) and no meaningful output. Nothing is downloaded: the tokenizer
    is a byte-level BPE without merges (one token per byte), which ``CLIPTokenizer`` accepts as a vocab.
    """
    import torch
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    chars = sorted(ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    text_config = dict(vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
                       eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"], **(text or {}))
    vision_config = dict(image_size=crop, **(vision or {}))
    config = CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=projection_dim)
    torch.manual_seed(seed)
    model = CLIPModel(config)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": crop}, crop_size={"height": crop, "width": crop}),
        tokenizer=tokenizer)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    processor.save_pretrained(dest)
    return dest


def make_raw_album(folder: str | os.PathLike, n: int, *, seed: int = 3, width: int = 4000, height: int = 3000,
                   quality: int = 90, workers: int | None = None) -> Path:
    """``n`` synthetic shots, each as ``IMG_i.jpg`` (JPEG, ``quality``), ``IMG_i_preview.dng`` (a DNG with
    that same JPEG embedded as its full-size preview, as cameras write them) and ``IMG_i_mosaic.dng``
    (the mosaic alone, no preview). Reused when already there with the same parameters."""
    import io

    from iqc_dagster.bench import dng

    folder = Path(folder)
    params = {"n": n, "seed": seed, "width": width, "height": height, "quality": quality, "v": "raw1"}
    manifest = folder.parent / f"{folder.name}{MANIFEST}"
    if manifest.exists() and json.loads(manifest.read_text()) == params:
        return folder
    folder.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> None:
        img = synthetic_photo(seed * 100_003 + i, width, height)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        (folder / f"IMG_{i:05d}.jpg").write_bytes(buf.getvalue())
        dng.write_dng(folder / f"IMG_{i:05d}_preview.dng", img, preview=img, preview_quality=quality)
        dng.write_dng(folder / f"IMG_{i:05d}_mosaic.dng", img)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(one, range(n)))
    manifest.write_text(json.dumps(params))
    return folder


def raw_decode_cost(folder: str | os.PathLike) -> dict:
    """ms per photo, one thread, of the pipeline's decode (:func:`imaging.decode`) of the same shots as a
    JPEG, as a DNG with a full-size embedded preview, and as a DNG without one (half-size demosaic); and
    the probe (inventory) cost of the DNG. One warm-up decode of each kind first."""
    import time

    from iqc_dagster.core import imaging

    folder = Path(folder)
    kinds = {"jpeg": sorted(folder.glob("IMG_*[0-9].jpg")), "dng_preview": sorted(folder.glob("*_preview.dng")),
             "dng_no_preview": sorted(folder.glob("*_mosaic.dng"))}
    if not all(kinds.values()):
        raise ValueError(f"no synthetic RAW album in {folder}")
    out: dict = {"n_photos": len(kinds["jpeg"])}
    for name, paths in kinds.items():
        imaging.decode(paths[0])
        t0 = time.perf_counter()
        for p in paths:
            imaging.decode(p)
        out[f"{name}_ms"] = (time.perf_counter() - t0) / len(paths) * 1000
        out[f"{name}_mb"] = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
    t0 = time.perf_counter()
    for p in kinds["dng_preview"]:
        imaging.probe(p)
    out["dng_probe_ms"] = (time.perf_counter() - t0) / len(kinds["dng_preview"]) * 1000
    out["preview_over_jpeg"] = out["dng_preview_ms"] / out["jpeg_ms"]
    return out

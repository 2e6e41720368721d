"""A tiny, randomly initialised CLIP (model + tokenizer + processor) saved like a real one, for tests only.

Built without any download: the tokenizer is a byte-level BPE with no merges (one token per byte), which
CLIPTokenizer accepts as a vocabulary dict; the processor declares a 32 px crop so the vision tower is
small, and the code under test must honour that config.
"""

from __future__ import annotations

from pathlib import Path

CROP = 32
PROJECTION_DIM = 16


def build_tiny_clip(dest: Path, *, crop: int = CROP, seed: int = 0) -> Path:
    from iqc_dagster.bench.perf import build_random_clip

    return build_random_clip(
        dest, crop=crop, seed=seed, projection_dim=PROJECTION_DIM,
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, patch_size=8))


def isolate_clip_env(tmp_path: Path, monkeypatch) -> Path:
    """An empty Hugging Face cache and no IQC_CLIP_* / offline settings, whatever this machine has."""
    from iqc_dagster.core import clip as clipcore

    cache = tmp_path / "hf-cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", clipcore.ENV_CLIP, clipcore.ENV_MODEL,
                clipcore.ENV_DEVICE, clipcore.ENV_BATCH_SIZE, clipcore.ENV_POSITIVE, clipcore.ENV_NEGATIVE,
                clipcore.ENV_DOWNLOAD, clipcore.ENV_PRECISION):
        monkeypatch.delenv(var, raising=False)
    return cache

"""Finding a CLIP model without the network: a folder or the Hugging Face cache (:func:`resolve_model`, :class:`ModelSource`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iqc_dagster.core.imaging import DECODE_VERSION
from iqc_dagster.core.clip.settings import CONFIG_FILES, ClipSettings, DEFAULT_MODEL, FIX_HINT, PREPROCESS_VERSION, SOURCE_FILE, TOKENIZER_FILES, WEIGHT_FILES, _HUB_ID, _TRUE
from iqc_dagster.core.clip.preprocess import Preprocess, read_preprocess

@dataclass(frozen=True)
class ModelSource:
    """Where the CLIP model is, or why there is none.

    ``status`` is ``"ready"`` (``path`` and ``model_id`` set), ``"off"`` (CLIP disabled on purpose) or
    ``"unavailable"`` (``reason`` says why, ``fix`` how to provide a model).
    """

    status: str
    requested: str
    path: Path | None = None
    model_id: str | None = None
    label: str | None = None
    reason: str = ""
    fix: str = ""
    preprocess: Preprocess | None = None
    seconds: float = 0.0  # time taken to decide

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def message(self) -> str:
        """One plain sentence (or two) for logs, metadata and the CLI."""
        if self.status == "ready":
            return f"aesthetic scoring uses CLIP model {self.model_id} ({self.path})"
        if self.status == "off":
            return f"aesthetic scoring off: {self.reason}"
        return f"aesthetic scoring skipped: {self.reason}. {self.fix}"


def _offline(env: Mapping[str, str]) -> bool:
    return any((env.get(k) or "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hf_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The Hugging Face hub cache, from the environment as huggingface_hub reads it."""
    env = os.environ if env is None else env
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    xdg = env.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def missing_files(model_dir: Path) -> list[str]:
    """What a CLIP folder lacks (empty when complete)."""
    missing = []
    if not (model_dir / "config.json").is_file():
        missing.append("config.json")
    if not any((model_dir / f).is_file() for f in WEIGHT_FILES):
        missing.append("weights (model.safetensors or pytorch_model.bin)")
    if not any(all((model_dir / f).is_file() for f in group) for group in TOKENIZER_FILES):
        missing.append("tokenizer (tokenizer.json, or vocab.json + merges.txt)")
    return missing


def fingerprint(model_dir: Path) -> str:
    """A content fingerprint of a model folder: small files in full, weight files by size and three
    1 MiB samples (start, middle, end), so a 600 MB checkpoint is identified in milliseconds."""
    h = hashlib.blake2b(digest_size=16)
    names = sorted({f for f in CONFIG_FILES if (model_dir / f).is_file()}
                   | {p.name for p in model_dir.iterdir() if p.is_file() and
                      (p.suffix in (".safetensors", ".bin") or p.name.endswith(".index.json"))})
    sample = 1 << 20
    for name in names:
        p = model_dir / name
        size = p.stat().st_size
        h.update(f"{name}\0{size}\0".encode())
        with open(p, "rb") as f:
            if size <= 3 * sample or name in CONFIG_FILES:
                h.update(f.read())
            else:
                for off in (0, size // 2, size - sample):
                    f.seek(off)
                    h.update(f.read(sample))
    return h.hexdigest()


def _model_label(model_dir: Path, default: str) -> str:
    src = model_dir / SOURCE_FILE
    if src.is_file():
        try:
            return str(json.loads(src.read_text())["source"])
        except (ValueError, KeyError, TypeError):
            pass
    return default


def _ready(requested: str, model_dir: Path, label: str, t0: float) -> ModelSource:
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        return _unavailable(requested, f"{model_dir}/config.json cannot be read ({exc})", t0)
    mtype = cfg.get("model_type")
    if mtype != "clip":
        return _unavailable(requested, f"{model_dir} holds a {mtype!r} model, not a CLIP model "
                                       f"(config.json model_type must be 'clip')", t0)
    try:
        prep = read_preprocess(model_dir)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _unavailable(requested, f"{model_dir}: unreadable processor config ({exc})", t0)
    model_id = f"{label}@{fingerprint(model_dir)[:12]}+{PREPROCESS_VERSION}+{DECODE_VERSION}"
    return ModelSource("ready", requested, path=model_dir, model_id=model_id, label=label,
                       preprocess=prep, seconds=time.monotonic() - t0)


def _unavailable(requested: str, reason: str, t0: float, fix: str | None = None) -> ModelSource:
    hub = requested if _HUB_ID.match(requested or "") else DEFAULT_MODEL
    return ModelSource("unavailable", requested, reason=reason, fix=fix or FIX_HINT.format(model=hub),
                       seconds=time.monotonic() - t0)


def load_failed(source: ModelSource, exc: BaseException) -> ModelSource:
    """``source`` after its model failed to load (:class:`ClipLoadError`): unavailable, with the reason."""
    return ModelSource("unavailable", source.requested, reason=str(exc), fix=FIX_HINT.format(model=DEFAULT_MODEL))


def looks_like_path(model: str) -> bool:
    """True for what can only be a folder (``./m``, ``/m``, ``~/m``, ``a/b/c``); ``org/name`` is a hub id."""
    return model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1 or ":" in model


def cached_snapshot(repo_id: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The snapshot folder of ``repo_id`` in the local Hugging Face cache (revision ``main``), or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(hf_cache_dir(env)))
    return Path(found).parent if isinstance(found, str) else None


def resolve_model(settings: ClipSettings, env: Mapping[str, str] | None = None) -> ModelSource:
    """Find the CLIP model ``settings`` asks for, without touching the network (unless
    ``settings.allow_download`` and not ``HF_HUB_OFFLINE``). Never raises for a missing model."""
    env = os.environ if env is None else env
    t0 = time.monotonic()
    requested = (settings.model or "").strip()
    if not settings.enabled:
        return ModelSource("off", requested, reason="CLIP disabled (--no-clip, IQC_CLIP=0 or clip.enabled "
                                                    "= false); the aesthetic weight goes to the other scores",
                           seconds=time.monotonic() - t0)
    if not requested:
        return _unavailable(requested, "no CLIP model configured", t0)
    dev_problem = device_problem(settings.device)
    if dev_problem:
        return _unavailable(requested, dev_problem, t0,
                            fix="Use --device cpu (or IQC_CLIP_DEVICE=cpu), or run on a machine with that device.")
    local = Path(requested).expanduser()
    if local.exists() or looks_like_path(requested):
        if not local.is_dir():
            what = "does not exist" if not local.exists() else "is not a directory"
            return _unavailable(requested, f"model folder {local} {what}", t0)
        missing = missing_files(local)
        if missing:
            return _unavailable(requested, f"model folder {local} is incomplete: missing {', '.join(missing)}", t0)
        return _ready(requested, local.resolve(), _model_label(local, local.resolve().name), t0)
    if not _HUB_ID.match(requested):
        return _unavailable(requested, f"{requested!r} is neither an existing folder nor a Hugging Face "
                                       f"model id", t0)
    snap = cached_snapshot(requested, env)
    if snap is not None:
        missing = missing_files(snap)
        if not missing:
            return _ready(requested, snap, requested, t0)
        reason = (f"{requested} is only partly in the Hugging Face cache ({snap}): missing {', '.join(missing)}")
    else:
        reason = f"{requested} is not in the local Hugging Face cache ({hf_cache_dir(env)})"
    if settings.allow_download and not _offline(env):
        from iqc_dagster.core.clip import download  # here: download imports this module
        try:
            path = download.fetch_model(requested, env=env)
        except download.FetchError as exc:
            return _unavailable(requested, f"{reason}, and downloading it failed: {exc}", t0)
        return _ready(requested, path, requested, t0)
    if _offline(env):
        reason += " and HF_HUB_OFFLINE is set"
    return _unavailable(requested, reason + "; runs do not download models", t0)


def device_problem(device: str) -> str | None:
    """None if ``device`` can be used, else why not. Importing torch is only needed for non-CPU devices."""
    dev = (device or "cpu").strip().lower()
    if dev == "cpu":
        return None
    if not re.fullmatch(r"(cuda(:\d+)?|mps)", dev):
        return f"unknown device {device!r} (use cpu, cuda, cuda:N or mps)"
    import torch

    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"device {device} requested but CUDA is not available"
        idx = int(dev.split(":")[1]) if ":" in dev else 0
        if idx >= torch.cuda.device_count():
            return f"device {device} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
    elif not torch.backends.mps.is_available():
        return "device mps requested but MPS is not available"
    return None



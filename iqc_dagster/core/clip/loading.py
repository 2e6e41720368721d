"""Loading a CLIP model and embedding images and prompts (:class:`LoadedClip`, :class:`ModelCache`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from iqc_dagster.core.clip.settings import DEFAULT_BATCH_SIZE, DEFAULT_DEVICE, resolve_precision
from iqc_dagster.core.clip.preprocess import Preprocess, prepare
from iqc_dagster.core.clip.models import ModelSource

class ClipLoadError(RuntimeError):
    """The model folder was found but could not be loaded; ``str(exc)`` is a one-line reason."""


def torch_threads() -> int:
    """Intra-op threads for torch: the CPUs this process may use (cgroup/affinity aware), at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, n)


@dataclass
class LoadedClip:
    source: ModelSource
    model: object  # transformers.CLIPModel, eval mode, on ``device``
    tokenizer: object
    device: str
    load_seconds: float = 0.0
    precision: str = "fp32"  # image tower arithmetic, resolved ("fp32" or "bf16"); text is always fp32
    loaded_at: float = field(default_factory=time.monotonic)  # when the load finished (time.monotonic)
    _text_cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    text_encodes: int = 0  # prompts actually run through the text tower (for tests and metadata)

    @property
    def model_id(self) -> str:
        return self.source.model_id

    @property
    def preprocess(self) -> Preprocess:
        return self.source.preprocess

    @property
    def logit_scale(self) -> float:
        """CLIP's learned log-temperature (the softmax uses ``exp`` of it)."""
        return float(self.model.logit_scale.detach().float().cpu().item())

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    def prepare(self, decoded) -> np.ndarray:
        """The model's input for one photo, from the shared decode (a ``Decoded`` or its ``rgb`` array)."""
        return prepare(decoded, self.source.preprocess)

    def embed_images(self, arrays: Sequence[np.ndarray], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Preprocessed arrays (3 x h x w float32) → N x D float32 L2-normalised embeddings."""
        import torch

        if len(arrays) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        device_type = torch.device(self.device).type
        autocast = torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with self._lock, torch.inference_mode(), autocast:
            for i in range(0, len(arrays), batch_size):
                x = torch.from_numpy(np.stack(arrays[i:i + batch_size])).to(self.device)
                feats = _pooled(self.model.get_image_features(pixel_values=x))
                out.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def embed_texts(self, prompts: Sequence[str]) -> np.ndarray:
        """Prompts → len(prompts) x D float32 L2-normalised embeddings; each prompt encoded once per model."""
        import torch

        todo = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if todo:
            with self._lock, torch.inference_mode():
                enc = self.tokenizer(list(todo), padding=True, truncation=True, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
                feats = _pooled(self.model.get_text_features(**enc))
                vecs = torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy()
            self.text_encodes += len(todo)
            self._text_cache.update(zip(todo, vecs))
        return np.stack([self._text_cache[p] for p in prompts]).astype(np.float32, copy=False)


def _pooled(out):
    """``get_*_features`` return a tensor (transformers 4) or an output whose ``pooler_output`` is the
    projection (transformers 5)."""
    return out if hasattr(out, "dim") else out.pooler_output


def load_model(source: ModelSource, device: str = DEFAULT_DEVICE, precision: str = "auto") -> LoadedClip:
    """Load the model ``source`` points at, from local files only (every call loads; keep the result, or
    use a :class:`ModelCache`). The weights stay float32; ``precision`` "bf16" runs the image tower under
    bfloat16 autocast."""
    if not source.ready:
        raise ClipLoadError(source.message())
    precision = resolve_precision(precision, device)
    t0 = time.monotonic()
    try:
        import torch
        import transformers
        from transformers import CLIPModel, CLIPTokenizer

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        n = torch_threads()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        model = CLIPModel.from_pretrained(str(source.path), local_files_only=True)
        model.eval().to(device)
        tokenizer = CLIPTokenizer.from_pretrained(str(source.path), local_files_only=True)
    except Exception as exc:  # corrupt weights, out of memory, incompatible checkpoint ...
        msg = str(exc).strip().splitlines()
        raise ClipLoadError(f"cannot load CLIP model from {source.path}: {type(exc).__name__}: "
                            f"{msg[0] if msg else ''}") from exc
    return LoadedClip(source=source, model=model, tokenizer=tokenizer, device=device,
                      load_seconds=time.monotonic() - t0, precision=precision)


class ModelCache:
    """The loaded CLIP model of one owner (a Dagster run, or one ``iqc run`` over many albums): each
    (model, device, precision) is loaded once and at most one model is kept in memory. Thread-safe; the
    background loader of the analysis step and the scoring step share it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, str, str], LoadedClip] = {}

    def get(self, source: ModelSource, device: str = DEFAULT_DEVICE, precision: str = "auto") -> LoadedClip:
        if not source.ready:
            raise ClipLoadError(source.message())
        key = (source.model_id, device, resolve_precision(precision, device))
        with self._lock:
            if key not in self._loaded:
                loaded = load_model(source, device, precision)
                self._loaded.clear()  # keep at most one model in memory
                self._loaded[key] = loaded
            return self._loaded[key]

    def clear(self) -> None:
        """Drop the loaded model (its memory is freed once no batch holds it)."""
        with self._lock:
            self._loaded.clear()



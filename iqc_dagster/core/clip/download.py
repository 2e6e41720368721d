"""Downloading a model (``iqc models fetch``): hub reachability, the download, copying a folder (:func:`fetch_model`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from iqc_dagster.core.clip.settings import CONFIG_FILES, DEFAULT_MODEL, SOURCE_FILE, WEIGHT_FILES, _HUB_ID
from iqc_dagster.core.clip.models import _offline, hf_cache_dir, missing_files

class FetchError(RuntimeError):
    """Downloading a model failed; ``str(exc)`` is a one-line reason."""


def hub_endpoint(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return (env.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def check_hub_reachable(repo_id: str, timeout: float = 8.0, env: Mapping[str, str] | None = None) -> None:
    """One quick request to the hub (no retries), so an offline machine fails in seconds, not minutes."""
    env = os.environ if env is None else env
    if _offline(env):
        raise FetchError("HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, so nothing can be downloaded")
    import urllib.error
    import urllib.request

    url = f"{hub_endpoint(env)}/api/models/{repo_id}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout) as r:
            status = r.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", exc)
        raise FetchError(f"cannot reach {hub_endpoint(env)} ({why}); this machine seems to be offline") from None
    if status in (401, 404):
        raise FetchError(f"{repo_id} was not found on {hub_endpoint(env)} (HTTP {status})")
    if status >= 400:
        raise FetchError(f"{hub_endpoint(env)} answered HTTP {status} for {repo_id}")


def fetch_model(repo_id: str, dest: str | os.PathLike | None = None, *, timeout: float = 8.0,
                env: Mapping[str, str] | None = None) -> Path:
    """Download ``repo_id`` into the Hugging Face cache (only the files CLIP needs: config, processor and
    tokenizer files, safetensors weights when the repo has them) and, with ``dest``, copy it there.
    Returns the folder to use. Raises :class:`FetchError` with a one-line reason."""
    env = os.environ if env is None else env
    if not _HUB_ID.match(repo_id or ""):
        raise FetchError(f"{repo_id!r} is not a Hugging Face model id (like {DEFAULT_MODEL})")
    check_hub_reachable(repo_id, timeout=timeout, env=env)
    from huggingface_hub import HfApi, snapshot_download

    try:
        files = set(HfApi(endpoint=hub_endpoint(env)).list_repo_files(repo_id))
        weights = [f for f in WEIGHT_FILES if f in files][:1]
        if not weights:
            raise FetchError(f"{repo_id} has no weights in a format this tool reads ({', '.join(WEIGHT_FILES)})")
        patterns = list(CONFIG_FILES) + weights
        if weights[0].endswith(".index.json"):
            patterns.append(weights[0].split(".index.json")[0].replace(".safetensors", "") + "-*")
        snap = Path(snapshot_download(repo_id, allow_patterns=patterns, cache_dir=str(hf_cache_dir(env)),
                                      endpoint=hub_endpoint(env)))
    except FetchError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()
        raise FetchError(f"download of {repo_id} failed: {type(exc).__name__}: {msg[0] if msg else ''}") from None
    missing = missing_files(snap)
    if missing:
        raise FetchError(f"{repo_id} downloaded but incomplete: missing {', '.join(missing)}")
    return export_model(snap, dest, source=repo_id) if dest else snap


def export_model(model_dir: str | os.PathLike, dest: str | os.PathLike, *, source: str) -> Path:
    """Copy a model folder's files (following the cache's symlinks) to ``dest``, byte for byte, so the
    copy has the same fingerprint and shares embeddings with the cached model."""
    import shutil

    src, dst = Path(model_dir), Path(dest).expanduser()
    missing = missing_files(src)
    if missing:
        raise FetchError(f"{src} is incomplete: missing {', '.join(missing)}")
    dst.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.iterdir()):
        if p.is_file() and p.name != SOURCE_FILE:
            shutil.copyfile(p, dst / p.name)
    (dst / SOURCE_FILE).write_text(json.dumps({"source": source}, indent=2) + "\n")
    return dst.resolve()

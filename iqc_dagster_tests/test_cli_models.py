"""``iqc models fetch|check`` and the CLIP flags of ``iqc rank`` (in-process: same code as the command)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from iqc_dagster.cli import main
from iqc_dagster_tests.tiny_clip import isolate_clip_env


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("IQC_DB", str(tmp_path / "db" / "iqc.duckdb"))
    monkeypatch.setenv("IQC_OUTPUT_DIR", str(tmp_path / "out"))
    return isolate_clip_env(tmp_path, monkeypatch)


def test_fetch_on_an_offline_machine_fails_fast_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing answers there: as good as offline
    t0 = time.monotonic()
    rc = main(["models", "fetch", "--timeout", "3"])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err.strip()
    assert rc == 2 and elapsed < 6
    assert len(err.splitlines()) == 1 and "cannot reach http://127.0.0.1:9" in err
    assert "machine with internet access" in err and "--clip-model DIR" in err


def test_fetch_honours_hf_hub_offline(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "fetch", "--dest", "/nonexistent/never-created"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert not Path("/nonexistent/never-created").exists()


def test_check_reports_the_model_or_why_not(tiny_model, capsys):
    assert main(["models", "check"]) == 1
    out = capsys.readouterr().out
    assert "aesthetic scoring skipped" in out and "iqc models fetch" in out
    assert main(["models", "check", "--clip-model", str(tiny_model), "--load"]) == 0
    out = capsys.readouterr().out
    assert "tinyclip@" in out and "centre crop 32x32" in out and "embedding dimension 16" in out
    assert main(["models", "check", "--clip-model", str(tiny_model), "--load", "--clip-precision", "bf16"]) == 0
    assert "on cpu (bf16)" in capsys.readouterr().out
    assert main(["models", "check", "--clip-model", str(tiny_model), "--load", "--clip-precision", "fp32"]) == 0
    assert "on cpu (fp32)" in capsys.readouterr().out


def test_rank_with_a_model_folder_fills_the_aesthetic_column(tiny_model, photo_root, tmp_path, capsys):
    out_csv = tmp_path / "ranked.csv"
    rc = main(["rank", "--input-dir", str(photo_root / "travel"), "--clip-model", str(tiny_model),
               "--positive-prompt", "a sharp photo", "--output", str(out_csv), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "skipped" not in out and "aesthetic 0." in out
    csv = pd.read_csv(out_csv)
    assert csv["aesthetic"].notna().all() and csv["aesthetic"].between(0, 1).all()


def test_rank_without_a_model_says_so_loudly_and_no_clip_says_off(photo_root, capsys):
    assert main(["rank", "--input-dir", str(photo_root / "portraits"), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "!" * 78  # a banner, before the ranking
    out = " ".join(line.removeprefix("! ") for line in lines)  # the banner is wrapped
    assert "aesthetic scoring skipped: openai/clip-vit-base-patch32 is not in the local Hugging Face cache" in out
    assert "iqc models fetch" in out and "technical scores only" in out
    assert main(["rank", "--input-dir", str(photo_root / "portraits"), "--quiet", "--no-clip"]) == 0
    out = capsys.readouterr().out
    assert "aesthetic scoring off" in out and "skipped:" not in out


def test_bad_prompt_flags_are_a_one_line_error(photo_root, capsys):
    rc = main(["rank", "--input-dir", str(photo_root / "travel"), "--positive-prompt", "x",
               "--negative-prompt", "x"])
    assert rc == 2 and "both positive and negative" in capsys.readouterr().err


def test_fetch_downloads_only_what_clip_needs_and_copies_it(tiny_model, tmp_path, monkeypatch, capsys):
    """The networked path, with the hub replaced by the tiny model folder (nothing leaves this machine)."""
    import huggingface_hub

    from iqc_dagster.core import clip as clipcore

    asked = {}

    class FakeApi:
        def __init__(self, endpoint=None):
            pass

        def list_repo_files(self, repo_id):
            return ["config.json", "pytorch_model.bin", "model.safetensors", "tf_model.h5", "tokenizer.json",
                    "vocab.json", "merges.txt", "preprocessor_config.json", "README.md"]

    def fake_snapshot_download(repo_id, allow_patterns, cache_dir, endpoint):
        asked.update(repo_id=repo_id, patterns=set(allow_patterns), cache_dir=cache_dir)
        return str(tiny_model)

    monkeypatch.setattr(clipcore.download, "check_hub_reachable", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    dest = tmp_path / "models" / "clip"
    assert main(["models", "fetch", "--model", "someorg/clip-tiny", "--dest", str(dest)]) == 0
    assert asked["repo_id"] == "someorg/clip-tiny"
    assert "model.safetensors" in asked["patterns"] and "pytorch_model.bin" not in asked["patterns"]
    assert "tf_model.h5" not in asked["patterns"] and "config.json" in asked["patterns"]
    assert asked["cache_dir"] == str(clipcore.hf_cache_dir())
    assert f"--clip-model {dest.resolve()}" in capsys.readouterr().out
    copied = clipcore.resolve_model(clipcore.ClipSettings(model=str(dest)))
    original = clipcore.resolve_model(clipcore.ClipSettings(model=str(tiny_model)))
    assert copied.ready and copied.model_id.startswith("someorg/clip-tiny@")
    assert copied.model_id.split("@")[1] == original.model_id.split("@")[1]  # same bytes, same fingerprint

"""core.clip: finding a model without the network, CLIP's preprocessing, embeddings, the aesthetic score."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from iqc_dagster.core import analysis, imaging
from iqc_dagster.core import clip as clipcore
from iqc_dagster_tests.conftest import real_photo, save_jpeg
from iqc_dagster_tests.tiny_clip import CROP, PROJECTION_DIM, build_tiny_clip, isolate_clip_env


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path, monkeypatch):
    """Every test sees an empty Hugging Face cache and no IQC_CLIP_* settings, whatever this machine has."""
    return isolate_clip_env(tmp_path, monkeypatch)


# --- preprocessing ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(512, 512), (300, 451), (451, 300), (683, 1024), (1024, 683), (120, 90)])
def test_preprocess_matches_transformers_clip_processor(shape):
    from PIL import Image
    from transformers import CLIPImageProcessorPil

    rgb = np.asarray(Image.fromarray(real_photo("astronaut")).resize((shape[1], shape[0])))
    ref = CLIPImageProcessorPil()(images=rgb, return_tensors="np")["pixel_values"][0]
    mine = clipcore.preprocess(rgb)
    assert mine.shape == ref.shape == (3, 224, 224) and mine.dtype == np.float32
    # identical up to one grey level in a handful of pixels (we resample only the centre-crop region)
    one_level = 1 / 255 / min(clipcore.CLIP_STD) + 1e-4
    diff = np.abs(mine - ref)
    assert diff.max() <= one_level
    assert (diff > 1e-4).mean() < 0.002


def test_preprocess_follows_the_models_processor_config(tiny_model):
    spec = clipcore.read_preprocess(tiny_model)  # CLIPProcessor.save_pretrained -> processor_config.json
    assert spec.crop_hw == (CROP, CROP) and spec.shortest_edge == CROP
    assert clipcore.preprocess(real_photo("coffee"), spec).shape == (3, CROP, CROP)
    # old-style preprocessor_config.json (as openai/clip-vit-base-patch32 ships it)
    old = clipcore.Preprocess.from_config({"crop_size": 224, "size": 224, "do_center_crop": True, "resample": 3,
                                          "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]})
    assert old.shortest_edge == 224 and old.crop_hw == (224, 224) and old.mean == (0.5, 0.5, 0.5)
    x = clipcore.preprocess(np.full((300, 400, 3), 255, np.uint8), old)
    assert np.allclose(x, 1.0)  # (1 - 0.5) / 0.5


# --- finding a model ----------------------------------------------------------------------------

def test_local_folder_resolves_with_a_content_based_id(tiny_model, tmp_path):
    s = clipcore.resolve_model(clipcore.ClipSettings(model=str(tiny_model)))
    assert s.ready and s.path == tiny_model.resolve()
    assert s.model_id.startswith("tinyclip@") and clipcore.PREPROCESS_VERSION in s.model_id
    assert s.model_id == clipcore.resolve_model(clipcore.ClipSettings(model=str(tiny_model))).model_id
    # a byte-for-byte copy (iqc models fetch --dest) shares the id, so it shares cached embeddings
    copy = clipcore.export_model(tiny_model, tmp_path / "elsewhere", source="tinyclip")
    assert clipcore.resolve_model(clipcore.ClipSettings(model=str(copy))).model_id == s.model_id
    # other weights, other id
    other = build_tiny_clip(tmp_path / "tinyclip", seed=1)
    assert clipcore.resolve_model(clipcore.ClipSettings(model=str(other))).model_id != s.model_id


def _fake_hub_cache(cache: Path, repo: str, model_dir: Path, commit: str = "a" * 40) -> Path:
    """Lay ``model_dir`` out as huggingface_hub caches ``repo`` (refs/main -> snapshots/<commit>)."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for p in model_dir.iterdir():
        shutil.copyfile(p, snap / p.name)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return snap


def test_hub_id_is_found_in_the_local_cache_without_network(tiny_model, empty_hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snap = _fake_hub_cache(empty_hf_cache, "someorg/clip-tiny", tiny_model)
    s = clipcore.resolve_model(clipcore.ClipSettings(model="someorg/clip-tiny"))
    assert s.ready and s.path == snap and s.model_id.startswith("someorg/clip-tiny@")


def test_missing_model_is_unavailable_quickly_with_reason_and_fix(empty_hf_cache):
    t0 = time.monotonic()
    s = clipcore.resolve_model(clipcore.ClipSettings())  # default hub id, nothing cached, network not tried
    assert time.monotonic() - t0 < 1.0
    assert s.status == "unavailable" and not s.ready
    assert clipcore.DEFAULT_MODEL in s.reason and str(empty_hf_cache) in s.reason
    msg = s.message()
    assert msg.startswith("aesthetic scoring skipped:") and "iqc models fetch" in msg and "--clip-model" in msg


def test_offline_flag_is_honoured_even_when_downloads_are_allowed(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(clipcore.download, "fetch_model", lambda *a, **k: pytest.fail("must not try to download"))
    s = clipcore.resolve_model(clipcore.ClipSettings(allow_download=True))
    assert s.status == "unavailable" and "HF_HUB_OFFLINE" in s.reason


@pytest.mark.parametrize("what", ["missing", "file", "incomplete", "not_clip"])
def test_bad_model_folders_are_unavailable_with_a_plain_reason(what, tiny_model, tmp_path):
    d = tmp_path / "m"
    if what == "file":
        d.write_text("x")
    elif what == "incomplete":
        d.mkdir()
        shutil.copyfile(tiny_model / "config.json", d / "config.json")
    elif what == "not_clip":
        shutil.copytree(tiny_model, d)
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps(cfg | {"model_type": "siglip"}))
    s = clipcore.resolve_model(clipcore.ClipSettings(model=str(d)))
    assert s.status == "unavailable"
    expected = {"missing": "does not exist", "file": "not a directory", "incomplete": "missing weights",
                "not_clip": "not a CLIP model"}[what]
    assert expected in s.reason


def test_clip_off_is_not_unavailable():
    s = clipcore.resolve_model(clipcore.ClipSettings(enabled=False))
    assert s.status == "off" and s.message().startswith("aesthetic scoring off")


def test_unusable_device_is_a_reason_not_a_crash(tiny_model):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    s = clipcore.resolve_model(clipcore.ClipSettings(model=str(tiny_model), device="cuda"))
    assert s.status == "unavailable" and "CUDA is not available" in s.reason


def test_settings_from_environment():
    env = {clipcore.ENV_CLIP: "off", clipcore.ENV_MODEL: "/m", clipcore.ENV_POSITIVE: "a | b|",
           clipcore.ENV_BATCH_SIZE: "4"}
    s = clipcore.ClipSettings.from_env(env)
    assert not s.enabled and s.model == "/m" and s.positive_prompts == ("a", "b") and s.batch_size == 4
    assert s.negative_prompts == clipcore.DEFAULT_NEGATIVE
    d = clipcore.ClipSettings.from_env({})
    assert d.enabled and d.model == clipcore.DEFAULT_MODEL and d.device == "cpu"
    assert d.positive_prompts == ("a professional photograph, sharp, vibrant, dramatic lighting",)
    assert d.negative_prompts == ("a blurry, poorly composed snapshot",)
    with pytest.raises(ValueError, match="IQC_CLIP"):
        clipcore.ClipSettings.from_env({clipcore.ENV_CLIP: "maybe"})
    with pytest.raises(ValueError, match="both positive and negative"):
        clipcore.ClipSettings(positive_prompts=("x",), negative_prompts=("x",))
    with pytest.raises(ValueError, match="non-empty"):
        clipcore.ClipSettings(positive_prompts=())


def test_hub_probe_fails_fast_when_the_hub_is_unreachable(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    t0 = time.monotonic()
    with pytest.raises(clipcore.FetchError, match="cannot reach"):
        clipcore.fetch_model("openai/clip-vit-base-patch32", timeout=3)
    assert time.monotonic() - t0 < 5


# --- embeddings and the score -------------------------------------------------------------------

@pytest.fixture(scope="module")
def loaded(tiny_model):
    source = clipcore.resolve_model(clipcore.ClipSettings(model=str(tiny_model)))
    return clipcore.load_model(source, "cpu", "fp32")  # exact comparisons with the model's own forward


def test_precision_setting_is_validated_and_auto_picks_bf16_only_on_amx_cpus(monkeypatch):
    assert clipcore.ClipSettings().precision == "auto"
    assert clipcore.ClipSettings.from_env({clipcore.ENV_PRECISION: " BF16 "}).precision == "bf16"
    with pytest.raises(ValueError, match="IQC_CLIP_.*precision must be one of auto, fp32, bf16"):
        clipcore.ClipSettings.from_env({clipcore.ENV_PRECISION: "fp16"})
    monkeypatch.setattr(clipcore.settings, "cpu_has_amx_bf16", lambda: True)
    assert clipcore.resolve_precision("auto", "cpu") == "bf16"
    assert clipcore.resolve_precision("auto", "cuda") == "fp32"
    assert clipcore.resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(clipcore.settings, "cpu_has_amx_bf16", lambda: False)
    assert clipcore.resolve_precision("auto", "cpu") == "fp32"
    assert clipcore.resolve_precision("bf16", "cpu") == "bf16"


def test_bf16_image_embeddings_agree_with_fp32(tiny_model, loaded):
    source = clipcore.resolve_model(clipcore.ClipSettings(model=str(tiny_model)))
    bf16 = clipcore.load_model(source, "cpu", "bf16")
    assert bf16.precision == "bf16" and loaded.precision == "fp32"
    arrays = [loaded.prepare(real_photo(n)) for n in ("astronaut", "coffee", "chelsea")]
    a, b = loaded.embed_images(arrays), bf16.embed_images(arrays)
    assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert not np.array_equal(a, b)  # the bfloat16 path really ran
    assert (np.sum(a * b, axis=1) > 0.999).all()


def test_image_embeddings_have_the_right_shape_are_normalised_and_batch_independent(loaded):
    photos = [real_photo(n) for n in ("astronaut", "coffee", "chelsea")]
    arrays = [loaded.prepare(p) for p in photos]
    assert arrays[0].shape == (3, CROP, CROP)
    e3 = loaded.embed_images(arrays, batch_size=3)
    e1 = loaded.embed_images(arrays, batch_size=1)
    assert e3.shape == (3, PROJECTION_DIM) and e3.dtype == np.float32
    assert np.allclose(np.linalg.norm(e3, axis=1), 1.0, atol=1e-5)
    assert np.allclose(e1, e3, atol=1e-5)
    assert not np.allclose(e3[0], e3[1])  # different photos, different embeddings


def test_text_embeddings_are_computed_once_per_prompt(loaded):
    before = loaded.text_encodes  # the loaded model is shared by the whole process: use fresh prompts
    p1, p2 = f"a sharp photo {uuid.uuid4().hex}", f"a dull photo {uuid.uuid4().hex}"
    a = loaded.embed_texts([p1, p2])
    b = loaded.embed_texts([p2, p1])
    assert loaded.text_encodes == before + 2
    assert np.allclose(a[::-1], b) and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_aesthetic_is_clips_own_two_label_probability(loaded):
    """With one prompt per side, the score equals softmax(CLIPModel(...).logits_per_image)[:, positive]."""
    import torch

    pos, neg = "a professional photograph, sharp, vibrant, dramatic lighting", "a blurry, poorly composed snapshot"
    arrays = [loaded.prepare(real_photo(n)) for n in ("astronaut", "coffee", "chelsea")]
    ours = clipcore.aesthetic_probability(loaded.embed_images(arrays), loaded.embed_texts([pos]),
                                          loaded.embed_texts([neg]), loaded.logit_scale)
    enc = loaded.tokenizer([pos, neg], padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           pixel_values=torch.from_numpy(np.stack(arrays)))
    ref = out.logits_per_image.softmax(dim=1)[:, 0].numpy()
    assert np.allclose(ours, ref, atol=1e-5)
    assert ((ours >= 0) & (ours <= 1)).all()


def test_several_prompts_are_ensembled_and_sides_are_symmetric(loaded):
    img = loaded.embed_images([loaded.prepare(real_photo("coffee")), loaded.prepare(real_photo("chelsea"))])
    pos = loaded.embed_texts(["a great photo", "an award-winning photo"])
    neg = loaded.embed_texts(["a bad photo"])
    p = clipcore.aesthetic_probability(img, pos, neg, loaded.logit_scale)
    mean_pos = pos.mean(axis=0, keepdims=True)  # ensemble = normalised mean of the prompt embeddings
    assert np.allclose(p, clipcore.aesthetic_probability(img, mean_pos, neg, loaded.logit_scale))
    assert np.allclose(clipcore.aesthetic_probability(img, neg, pos, loaded.logit_scale), 1 - p)
    # extreme temperature cannot leave [0, 1]
    q = clipcore.aesthetic_probability(img, pos, neg, 50.0)
    assert np.isfinite(q).all() and ((q >= 0) & (q <= 1)).all()


@pytest.mark.parametrize("prefetch", [False, True])
def test_one_decode_feeds_features_and_clip(loaded, tmp_path, monkeypatch, prefetch):
    paths = [save_jpeg(real_photo(n), tmp_path / f"{n}.jpg") for n in ("astronaut", "coffee", "chelsea")]
    calls = []
    real_decode = imaging.decode
    monkeypatch.setattr(imaging, "decode",
                        lambda p, *a, **k: calls.append(Path(p).name) or real_decode(p, *a, **k))
    tasks = [analysis.PhotoTask(content_hash=f"h{i}", path=p, rel_path=p.name, features=("sharpness",),
                                want_clip=(i != 1)) for i, p in enumerate(paths)]
    batches = list(analysis.analyze(tasks, batch_size=2, workers=2, clip_prepare=loaded.prepare,
                                    prefetch=prefetch))
    assert [b.done for b in batches] == [2, 3]
    assert sorted(calls) == sorted(p.name for p in paths)  # exactly one decode per photo
    got = {h: a for b in batches for h, a in b.clip_inputs}
    assert set(got) == {"h0", "h2"}  # only the tasks that asked for CLIP input
    assert all(a.shape == (3, CROP, CROP) and a.dtype == np.float32 for a in got.values())
    # and the array is CLIP's preprocessing of that very decode
    assert np.allclose(got["h0"], loaded.prepare(real_decode(paths[0])))
    assert {r[0] for b in batches for r in b.feature_rows} == {"h0", "h1", "h2"}


def test_clip_preprocessing_failure_keeps_the_features(tmp_path):
    p = save_jpeg(real_photo("coffee"), tmp_path / "c.jpg")
    task = analysis.PhotoTask(content_hash="h", path=p, rel_path="c.jpg", features=("sharpness",), want_clip=True)

    def broken(decoded):
        raise RuntimeError("boom")

    (batch,) = analysis.analyze([task], clip_prepare=broken)
    assert batch.feature_rows and not batch.clip_inputs and "boom" in batch.clip_errors["h"]
    assert not batch.errors


def test_workers_run_opencv_single_threaded_and_the_setting_is_restored(tmp_path):
    """One worker per core already uses every core: OpenCV's own threads would only oversubscribe them."""
    import cv2

    paths = [save_jpeg(real_photo(n), tmp_path / f"{n}.jpg") for n in ("coffee", "chelsea")]
    seen = []

    def record(decoded):
        seen.append(cv2.getNumThreads())
        return np.zeros(1, np.float32)

    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        tasks = [analysis.PhotoTask(content_hash=p.stem, path=p, rel_path=p.name, features=("sharpness",),
                                    want_clip=True) for p in paths]
        list(analysis.analyze(tasks, workers=2, clip_prepare=record))
        assert seen == [1, 1]
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)

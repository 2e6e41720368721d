"""CLIP in the album graph: embeddings stored and reused, the aesthetic score, the offline fallback."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from iqc_dagster.core import fusion, imaging, store
from iqc_dagster.core.clip import ClipSettings
from iqc_dagster.runner import materialize_album
from iqc_dagster_tests.tiny_clip import PROJECTION_DIM, isolate_clip_env


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    return isolate_clip_env(tmp_path, monkeypatch)


def _with_clip(settings, **kw):
    return dataclasses.replace(settings, clip=ClipSettings(**kw))


def _md(result, asset: str) -> dict:
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(asset)]
    assert mats, f"{asset} not materialized"
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def _checks(result) -> dict:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _query(settings, sql, params=()):
    with duckdb.connect(settings.db_path, read_only=True) as c:
        return c.execute(sql, list(params)).fetchall()


def _csv(settings, album):
    return pd.read_csv(Path(settings.output_dir) / "csvs" / f"{album}.csv")


def test_embeddings_are_stored_scored_and_reused(settings, photo_root, tiny_model, monkeypatch):
    s = _with_clip(settings, model=str(tiny_model))
    decodes = []
    real_decode = imaging.decode

    def counting_decode(p, *a, **k):  # analysis decodes at full feature size; report thumbnails are small
        if k.get("max_side", a[0] if a else imaging.MAX_SIDE) == imaging.MAX_SIDE:
            decodes.append(Path(p).name)
        return real_decode(p, *a, **k)

    monkeypatch.setattr(imaging, "decode", counting_decode)
    with dg.DagsterInstance.ephemeral() as instance:
        first = materialize_album("travel", s, instance=instance)
        md = _md(first, "clip_embeddings")
        assert md["status"] == "computed" and md["n_embedded"] == 4 and md["n_cached"] == 0
        assert md["dim"] == PROJECTION_DIM and md["device"] == "cpu"
        assert _md(first, "technical_features")["n_computed"] == 4
        assert len(decodes) == 4  # features and CLIP from one decode per photo
        assert all(_checks(first).values()) and "every_photo_has_clip_embedding" in _checks(first)
        model_id = md["model_id"]
        rows = _query(s, "SELECT typeof(embedding), len(embedding) FROM clip_embeddings WHERE model_id = ?",
                      [model_id])
        assert len(rows) == 4 and {r for r in rows} == {("FLOAT[]", PROJECTION_DIM)}

        # the aesthetic column is filled, in [0, 1], and takes part in final_score
        csv = _csv(s, "travel")
        assert csv["aesthetic"].notna().all() and csv["aesthetic"].between(0, 1).all()
        aest = _md(first, "aesthetic_scores")
        assert aest["status"] == "computed" and aest["n_scored"] == 4 and aest["n_text_encoded"] == 2
        assert _md(first, "ranked_photos")["effective_weights"]["aesthetic"] > 0
        with duckdb.connect(s.db_path, read_only=True) as c:
            scores = store.album_scores(c, "travel")
            ranked = c.execute("SELECT path, final_score FROM rankings WHERE album = ?", ["travel"]).df()
        weights = fusion.DEFAULT_WEIGHTS
        with_aest = fusion.fuse(scores, weights).final_score
        without = fusion.fuse(scores.drop(columns=["aesthetic"]), weights).final_score
        by_path = dict(zip(ranked["path"], ranked["final_score"]))
        assert np.allclose([by_path[p] for p in scores["path"]], with_aest)
        assert not np.allclose(with_aest, without)

        # a re-run embeds nothing new and encodes no prompt again
        decodes.clear()
        second = materialize_album("travel", s, instance=instance)
        md2 = _md(second, "clip_embeddings")
        assert md2["n_embedded"] == 0 and md2["n_cached"] == 4
        assert _md(second, "aesthetic_scores")["n_text_encoded"] == 0
        assert decodes == []
        assert _query(s, "SELECT count(*) FROM clip_embeddings")[0][0] == 4
        assert np.allclose(_csv(s, "travel")["aesthetic"], csv["aesthetic"])

        # embeddings are shared across albums: only the new content is embedded
        (photo_root / "mixed").mkdir()
        shutil.copy2(photo_root / "travel" / "coffee.jpg", photo_root / "mixed" / "a.jpg")
        shutil.copy2(photo_root / "travel" / "chelsea.jpg", photo_root / "mixed" / "b.jpg")
        shutil.copy2(photo_root / "portraits" / "astronaut.jpg", photo_root / "mixed" / "c.jpg")
        third = materialize_album("mixed", s, instance=instance)
        md3 = _md(third, "clip_embeddings")
        assert md3["n_embedded"] == 1 and md3["n_cached"] == 2
    assert _query(s, "SELECT count(*) FROM clip_embeddings")[0][0] == 5


def test_no_model_available_run_completes_and_says_so(settings, _isolated):
    s = _with_clip(settings)  # the default hub id; the (isolated) Hugging Face cache is empty
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_album("portraits", s, instance=instance)
    assert result.success and all(_checks(result).values())
    for asset in ("clip_embeddings", "aesthetic_scores"):
        md = _md(result, asset)
        assert md["status"] == "skipped"
        assert "aesthetic scoring skipped" in md["message"] and "iqc models fetch" in md["how_to_enable"]
        assert md["resolve_ms"] < 1000  # decided locally, no network wait
    ranked = _md(result, "ranked_photos")
    assert "aesthetic scoring skipped" in ranked["notes"] and "redistributed" in ranked["notes"]
    assert "aesthetic" not in ranked["effective_weights"]
    assert abs(sum(ranked["effective_weights"].values()) - 1) < 1e-9
    csv = _csv(s, "portraits")
    assert len(csv) == 4 and csv["aesthetic"].isna().all() and csv["final_score"].notna().all()
    assert _query(s, "SELECT status FROM aesthetic_status WHERE album = 'portraits'") == [("skipped",)]
    assert _query(s, "SELECT count(*) FROM clip_embeddings")[0][0] == 0


def test_model_folder_that_fails_to_load_is_reported_as_skipped(settings, tiny_model, tmp_path):
    broken = tmp_path / "broken-clip"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors at all")
    s = _with_clip(settings, model=str(broken))
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_album("portraits", s, instance=instance)
    assert result.success
    assert _md(result, "aesthetic_scores")["status"] == "skipped"
    assert _query(s, "SELECT status FROM aesthetic_status WHERE album = 'portraits'") == [("skipped",)]
    csv = _csv(s, "portraits")
    assert csv["aesthetic"].isna().all() and csv["final_score"].notna().all()
    assert "skipped" in _md(result, "ranked_photos")["notes"]


def test_a_model_that_fails_to_load_is_reported_even_when_no_photo_could_be_embedded(settings, tiny_model,
                                                                                    tmp_path, photo_root):
    """The model loads in the background and is first needed by a decoded photo; with none decodable,
    its failure must still reach the metadata."""
    broken = tmp_path / "broken-clip"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors at all")
    album = photo_root / "cut"
    album.mkdir()
    full = (photo_root / "travel" / "coffee.jpg").read_bytes()
    (album / "cut.jpg").write_bytes(full[: len(full) // 2])  # the header reads, the pixels do not
    s = _with_clip(settings, model=str(broken))
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_album("cut", s, instance=instance)
    assert result.success
    md = _md(result, "clip_embeddings")
    assert md["status"] == "skipped" and "cannot load CLIP model" in md["message"]
    assert md["n_embedded"] == 0


def test_turning_clip_off_removes_the_aesthetic_score_but_keeps_embeddings(settings, tiny_model):
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_album("travel", _with_clip(settings, model=str(tiny_model)), instance=instance)
        assert _csv(settings, "travel")["aesthetic"].notna().all()
        off = materialize_album("travel", _with_clip(settings, model=str(tiny_model), enabled=False),
                                instance=instance)
    assert _md(off, "aesthetic_scores")["status"] == "off"
    assert _md(off, "clip_embeddings")["status"] == "off"
    assert _csv(settings, "travel")["aesthetic"].isna().all()
    assert _query(settings, "SELECT count(*) FROM normalized_scores WHERE score = 'aesthetic'")[0][0] == 0
    assert _query(settings, "SELECT count(*) FROM clip_embeddings")[0][0] == 4  # cache kept for next time


def test_prompts_are_configurable_and_encoded_once(settings, tiny_model):
    base = dict(model=str(tiny_model))
    custom = ("a tack-sharp photo", "a vivid, well exposed photo")
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_album("travel", _with_clip(settings, **base), instance=instance)
        default_scores = _csv(settings, "travel").set_index("file")["aesthetic"]
        r = materialize_album("travel", _with_clip(settings, **base, positive_prompts=custom), instance=instance)
    md = _md(r, "aesthetic_scores")
    assert md["prompts"]["positive"] == list(custom)
    assert md["prompts"]["negative"] == ["a blurry, poorly composed snapshot"]
    assert md["n_text_encoded"] == 2  # the two new positive prompts; the negative one was stored
    assert _md(r, "clip_embeddings")["n_embedded"] == 0  # image embeddings do not depend on prompts
    custom_scores = _csv(settings, "travel").set_index("file")["aesthetic"]
    assert custom_scores.between(0, 1).all()
    assert not np.allclose(custom_scores.loc[default_scores.index], default_scores)
    assert _query(settings, "SELECT count(*) FROM clip_text_embeddings")[0][0] == 4  # 2 default + 2 new


def test_technical_features_can_be_materialized_without_clip(settings, tiny_model):
    from iqc_dagster.definitions import stage_defs
    from iqc_dagster.defs.partitions import albums_partitions
    from iqc_dagster.defs.resources import make_resources

    s = _with_clip(settings, model=str(tiny_model))
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(albums_partitions.name, ["travel"])
        result = dg.materialize([*stage_defs().assets, *stage_defs().asset_checks],
                                selection=["image_inventory", "technical_features"], partition_key="travel",
                                instance=instance, resources=make_resources(s))
    assert result.success
    keys = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert keys == {"image_inventory", "technical_features"}
    assert _query(s, "SELECT count(*) FROM clip_embeddings")[0][0] == 0

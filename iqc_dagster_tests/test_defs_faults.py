"""The album graph on a library full of broken and odd files, in a read-only photo root."""

import hashlib
import os
import stat

import dagster as dg
import pandas as pd
import pytest

from iqc_dagster.core.config import Settings
from iqc_dagster.runner import materialize_album
from iqc_dagster_tests import faults


def _snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = (digest, st.st_mtime_ns, st.st_mode)
    return out


@pytest.fixture
def readonly_corpus(tmp_path):
    root = tmp_path / "photos"
    expected = faults.build(root / "odd")
    modes = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                os.chmod(p, 0o444)
        modes.append(dirpath)
    for d in sorted(modes, reverse=True):
        os.chmod(d, 0o555)
    yield root, expected
    for d in modes:
        os.chmod(d, 0o755)


def test_fault_corpus_run_succeeds_and_lists_every_bad_file(tmp_path, readonly_corpus):
    root, expected = readonly_corpus
    before = _snapshot(root)
    settings = Settings(photo_root=str(root), db_path=str(tmp_path / "db" / "iqc.duckdb"),
                        output_dir=str(tmp_path / "out"))
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_album("odd", settings, instance=instance)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    ranked = pd.read_csv(tmp_path / "out" / "csvs" / "odd.csv")
    skipped = pd.read_csv(tmp_path / "out" / "csvs" / "odd_skipped.csv")
    assert set(ranked["file"]) == {n for n, ok in expected.items() if ok}
    assert set(skipped["file"]) == {n for n, ok in expected.items() if not ok}
    assert skipped["reason"].str.len().min() > 3
    why = dict(zip(skipped["file"], skipped["reason"]))
    for name, text in faults.REASONS.items():
        assert text in why[name], (name, why[name])
    # blank and tiny frames: ranked below every photo with detail, with the reason, in no group
    last = ranked.tail(len(faults.NO_DETAIL))
    assert set(last["file"]) == set(faults.NO_DETAIL)
    assert (last["final_score"] == 0).all() and (last["group_size"] == 1).all()
    assert last["reasons"].str.contains("blank frame|tiny image").all()
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert _snapshot(root) == before  # originals untouched, nothing written into the photo folders


def test_hostile_album_name_runs_and_stays_data(tmp_path):
    import shutil

    from iqc_dagster_tests.conftest import SAMPLES

    album = "Tom's \"best\" <b>2024<i>; DROP TABLE photos;--"
    root = tmp_path / "photos"
    (root / album).mkdir(parents=True)
    for n in ("coffee.jpg", "chelsea.jpg"):
        shutil.copy2(SAMPLES / "travel" / n, root / album / n)
    settings = Settings(photo_root=str(root), db_path=str(tmp_path / "iqc.duckdb"), output_dir=str(tmp_path / "out"))
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_album(album, settings, instance=instance)
    assert result.success
    csv = pd.read_csv(tmp_path / "out" / "csvs" / f"{album}.csv")
    assert len(csv) == 2
    import duckdb

    with duckdb.connect(settings.db_path, read_only=True) as c:
        assert c.execute("SELECT DISTINCT album FROM photos").fetchall() == [(album,)]
    reports = list((tmp_path / "out" / "reports").iterdir())
    assert len(reports) == 1 and reports[0].parent == tmp_path / "out" / "reports"
    html = (reports[0] / "index.html").read_text(encoding="utf-8")
    assert "<b>2024<i>" not in html and "&lt;b&gt;2024&lt;i&gt;" in html


ODD_ALBUMS = [os.fsdecode(b"caf\xe9 2019"), "a" * 240, " spaces around ", "new\nline", ".hidden", "Best of...",
              "back\\slash", "\x1b[31mred"]


def test_odd_album_names_rank_end_to_end(tmp_path):
    """Each album name a file system allows becomes a partition key, DB rows and output files."""
    import duckdb
    import numpy as np
    from PIL import Image

    from iqc_dagster.core import inventory, names

    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for album in ODD_ALBUMS:
        d = root / album
        d.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(d / f"p{i}.jpg")
    listing = inventory.scan_root(root)
    assert listing.hidden == [".hidden"] and ".hidden" not in listing.albums and len(listing.albums) == 7
    settings = Settings(photo_root=str(root), db_path=str(tmp_path / "iqc.duckdb"), output_dir=str(tmp_path / "out"))
    keys = listing.albums + listing.hidden  # a hidden folder is ranked when named
    with dg.DagsterInstance.ephemeral() as instance:
        for key in keys:
            result = materialize_album(key, settings, instance=instance)
            assert result.success, key
    stems = {names.file_stem(k) for k in keys}
    assert len(stems) == len(keys)
    for key in keys:
        csv = tmp_path / "out" / "csvs" / f"{names.file_stem(key)}.csv"
        df = pd.read_csv(csv)
        assert df["file"].tolist() and sorted(df["file"]) == ["p0.jpg", "p1.jpg"]
        assert all(os.path.isfile(names.real_path(p)) for p in df["path"])
    with duckdb.connect(settings.db_path, read_only=True) as c:
        stored = {r[0] for r in c.execute("SELECT DISTINCT album FROM rankings").fetchall()}
    assert stored == set(keys)
    leftovers = [p for p in (tmp_path / "out").rglob("*.tmp")]
    assert not leftovers


def test_two_folders_of_one_name_are_not_mixed(tmp_path):
    import numpy as np
    from PIL import Image

    from iqc_dagster.runner import RunFailed

    rng = np.random.default_rng(1)
    for card in ("c1", "c2"):
        (tmp_path / card / "trip").mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(tmp_path / card / "trip" / f"{card}.jpg")
    db, out = str(tmp_path / "iqc.duckdb"), str(tmp_path / "out")
    first = Settings(photo_root=str(tmp_path / "c1"), db_path=db, output_dir=out)
    second = Settings(photo_root=str(tmp_path / "c2"), db_path=db, output_dir=out)
    with dg.DagsterInstance.ephemeral() as instance:
        materialize_album("trip", first, instance=instance)
        with pytest.raises(RunFailed, match="already stands for the folder"):
            materialize_album("trip", second, instance=instance)
        assert pd.read_csv(tmp_path / "out" / "csvs" / "trip.csv")["file"].tolist() == ["c1.jpg"]  # kept
        renamed = Settings(photo_root=second.photo_root, db_path=db, output_dir=out,
                           album_folders=(("trip-c2", str(tmp_path / "c2" / "trip")),))
        materialize_album("trip-c2", renamed, instance=instance)
    assert pd.read_csv(tmp_path / "out" / "csvs" / "trip-c2.csv")["file"].tolist() == ["c2.jpg"]
    assert pd.read_csv(tmp_path / "out" / "csvs" / "trip.csv")["file"].tolist() == ["c1.jpg"]

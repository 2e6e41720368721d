"""The album graph on a library full of broken and odd files, in a read-only photo root."""

import hashlib
import os
import stat

import dagster as dg
import pandas as pd
import pytest

from iqc_dagster.core.config import Settings
from iqc_dagster.defs.runner import materialize_album
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

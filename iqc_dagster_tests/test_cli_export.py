"""The photographer's workflow end to end: a RAW + JPEG + bracket folder ranks; `iqc export xmp` writes
sidecars ExifTool reads, keeps the user's own rating, never touches a photo; the xmp_sidecars asset."""

import hashlib

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from iqc_dagster import cli
from iqc_dagster.core.config import Settings
from iqc_dagster.bench import dng
from iqc_dagster_tests import exiftool
from iqc_dagster_tests.conftest import real_photo, save_jpeg


def _base(tmp_path):
    return ["--db", str(tmp_path / "iqc.duckdb"), "--output-dir", str(tmp_path / "out"), "--no-clip", "--quiet"]


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.suffix.lower() != ".xmp"}


@pytest.fixture(scope="module")
def shoot(tmp_path_factory):
    """A card: RAW + JPEG of one shot, a RAW-only shot (no preview), a 3-frame exposure bracket (DNGs
    at 0, -2, +2 EV within one second) and two JPEGs."""
    folder = tmp_path_factory.mktemp("card") / "shoot"
    folder.mkdir()
    scene = dng.scene(1280, 960, seed=3)
    dng.write_dng(folder / "IMG_1.DNG", scene, preview=scene, captured="2024:05:01 09:00:00")
    save_jpeg(scene, folder / "IMG_1.JPG")
    dng.write_dng(folder / "IMG_2.dng", dng.scene(1280, 960, seed=5), captured="2024:05:01 09:30:00")
    for i, ev in enumerate((0.0, -2.0, 2.0)):
        img = np.clip(scene.astype(float) * 2 ** (ev / 2), 0, 255).astype(np.uint8)
        dng.write_dng(folder / f"BR_{i}.dng", img, preview=img, captured="2024:05:01 10:00:00", exposure_bias=ev)
    save_jpeg(real_photo("astronaut"), folder / "astronaut.jpg")
    save_jpeg(real_photo("coffee"), folder / "coffee.jpg")
    return folder


def test_raw_folder_ranks_and_exports(tmp_path, shoot, capsys):
    import shutil

    folder = tmp_path / "shoot"
    shutil.copytree(shoot, folder)
    before = _digests(folder)
    assert cli.main(["rank", "--input-dir", str(folder), *_base(tmp_path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "ranked 7 photos" in out and "unreadable" not in out and "1 RAW + JPEG pair(s) scored once" in out
    ranked = pd.read_csv(tmp_path / "out" / "csvs" / "shoot.csv", keep_default_na=False).set_index("file")
    assert "IMG_1.DNG" not in ranked.index and ranked.loc["IMG_1.JPG", "companions"] == "IMG_1.DNG"
    assert "IMG_2.dng" in ranked.index
    assert set(ranked.loc[["BR_0.dng", "BR_1.dng", "BR_2.dng"], "group_kind"]) == {"bracket"}
    assert not ranked.loc[["BR_0.dng", "BR_1.dng", "BR_2.dng"], "reasons"].str.contains("lower score").any()
    assert pd.read_csv(tmp_path / "out" / "csvs" / "shoot_skipped.csv").empty

    # the user had rated IMG_2 in Lightroom already (photo.xmp naming)
    (folder / "IMG_2.xmp").write_bytes(b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf='
                                       b'"http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
                                       b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="5"/></rdf:RDF></x:xmpmeta>')
    args = ["export", "xmp", "--input-dir", str(folder), "--output-dir", str(tmp_path / "out")]
    assert cli.main([*args, "--dry-run"]) == 0
    assert "would write 8 sidecar(s)" in capsys.readouterr().out
    assert sorted(p.name for p in folder.glob("*.xmp")) == ["IMG_2.xmp"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "wrote 8 sidecar(s)" in out and "kept 1 rating(s) you set" in out
    sidecars = sorted(p.name for p in folder.glob("*.xmp"))
    assert sidecars == ["BR_0.dng.xmp", "BR_1.dng.xmp", "BR_2.dng.xmp", "IMG_1.DNG.xmp", "IMG_1.JPG.xmp",
                        "IMG_2.xmp", "astronaut.jpg.xmp", "coffee.jpg.xmp"]
    tags = {n: exiftool.read(folder / n) for n in sidecars}
    assert tags["IMG_2.xmp"]["XMP-xmp:Rating"] == 5  # the user's stars
    assert tags["IMG_1.DNG.xmp"]["XMP-xmp:Rating"] == tags["IMG_1.JPG.xmp"]["XMP-xmp:Rating"]
    for n in ("BR_0.dng.xmp", "BR_1.dng.xmp", "BR_2.dng.xmp"):
        assert tags[n]["XMP-xmp:Rating"] >= 3 and "iqc|bracket" in tags[n]["XMP-lr:HierarchicalSubject"]
    for t in tags.values():
        assert 1 <= t["XMP-xmp:Rating"] <= 5
    assert _digests(folder) == before  # no photo was written
    # a second export changes nothing
    assert cli.main(args) == 0
    assert "wrote 0 sidecar(s)" in capsys.readouterr().out


def test_export_errors_are_one_line(tmp_path, capsys):
    folder = tmp_path / "never_ranked"
    folder.mkdir()
    assert cli.main(["export", "xmp", "--input-dir", str(folder), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no ranking of album" in err and "iqc rank --input-dir" in err
    assert cli.main(["export", "xmp", "--input-dir", str(folder), "--label", "pick=Mauve"]) == 2
    assert "Mauve" in capsys.readouterr().err


def test_xmp_sidecars_asset_writes_to_a_dest_mirror(tmp_path, shoot):
    import shutil

    from iqc_dagster import runner

    root = tmp_path / "photos"
    shutil.copytree(shoot, root / "shoot")
    settings = Settings(photo_root=str(root), db_path=str(tmp_path / "d.duckdb"), output_dir=str(tmp_path / "out"))
    import dataclasses

    settings = dataclasses.replace(settings, clip=dataclasses.replace(settings.clip, enabled=False))
    with dg.DagsterInstance.ephemeral() as instance:
        runner.materialize_album("shoot", settings, instance=instance, log_level="WARNING")
        mirror = tmp_path / "mirror"
        result = runner.run_job(
            "export_xmp_job", settings, partition_key="shoot", instance=instance, log_level="WARNING",
            ops_config={"xmp_sidecars": {"config": {"dest": str(mirror), "sidecar": "base"}}})
    md = result.asset_materializations_for_node("xmp_sidecars")[0].metadata
    assert md["n_written"].value == 7 and md["n_failed"].value == 0  # IMG_1.xmp serves the RAW and the JPEG
    assert not list((root / "shoot").glob("*.xmp"))  # the album folder untouched
    assert exiftool.read(mirror / "IMG_1.xmp")["XMP-iqc:Album"] == "shoot"


def _write_labels(path, header, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")  # as the review page writes it
        w.writerow(header)
        w.writerows(rows)
    return path


def test_export_xmp_takes_the_review_pages_decisions(tmp_path, photo_root, capsys):
    """rank -> the review page's picks CSV -> export xmp --labels (dry run first) -> the sidecars hold the
    decisions and the ratings `iqc tune` collects are the user's; bad CSVs are one-line errors."""
    from iqc_dagster.core import ratings

    folder = photo_root / "portraits"
    before = _digests(folder)
    assert cli.main(["rank", "--input-dir", str(folder), *_base(tmp_path)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    ranked = pd.read_csv(tmp_path / "out" / "csvs" / "portraits.csv", keep_default_na=False)
    by_rank = ranked.sort_values("rank")["file"].tolist()
    best, worst = by_rank[0], by_rank[-1]
    page_key = ranked.set_index("file")["path"]  # the page exports absolute paths (its `key`)
    labels = _write_labels(tmp_path / "portraits-picks.csv", ["file", "pick"], [
        [page_key[best], "pick"], [page_key[worst], "reject"], [str(tmp_path / "gone.jpg"), "pick"]])
    args = ["export", "xmp", "--input-dir", str(folder), "--output-dir", str(tmp_path / "out"),
            "--labels", str(labels)]

    assert cli.main([*args, "--dry-run"]) == 0
    cap = capsys.readouterr()
    assert "would write 4 sidecar(s)" in cap.out and "2 review decision(s) applied to 2 sidecar(s)" in cap.out
    assert f"would write {folder / best}.xmp" in cap.err and "(your review decision: pick)" in cap.err
    unmatched = [ln for ln in cap.err.splitlines() if "matched no ranked photo" in ln]
    assert len(unmatched) == 1 and "1 of 3 row(s)" in unmatched[0] and "gone.jpg" in unmatched[0]
    assert not list(folder.glob("*.xmp"))  # the dry run wrote nothing

    assert cli.main(args) == 0
    cap = capsys.readouterr()
    assert "wrote 4 sidecar(s)" in cap.out and "Traceback" not in cap.err
    tags = {n: exiftool.read(folder / f"{n}.xmp") for n in by_rank}
    assert tags[best]["XMP-xmp:Rating"] == 4 and tags[best]["XMP-iqc:RatingSource"] == "review"
    assert tags[worst]["XMP-xmp:Rating"] == 1 and tags[worst]["XMP-iqc:Decision"] == "reject"
    for n in by_rank[1:-1]:  # no decision: iqc's suggestion, recorded as iqc's
        assert tags[n]["XMP-xmp:Rating"] == tags[n]["XMP-iqc:Rating"]
    assert _digests(folder) == before  # no photo was written

    # the loop closes: the ratings iqc tune collects (sidecars) are exactly the two decisions
    found, _ = ratings.collect_ratings([("portraits", n) for n in by_rank], photo_root)
    assert {k[1]: (r.value, r.source) for k, r in found.items()} == {best: (4.0, "sidecar"),
                                                                      worst: (1.0, "sidecar")}

    # a malformed CSV, a missing one, another album's: exit 2, one line, nothing written
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.xmp")}
    bad = _write_labels(tmp_path / "bad.csv", ["name", "stars"], [["x.jpg", "5"]])
    other = _write_labels(tmp_path / "other.csv", ["file", "rating"], [["coffee.jpg", "5"]])
    for csv_path, msg in ((bad, "needs a 'file' column"), (tmp_path / "missing.csv", "does not exist"),
                          (other, "none of its 1 row(s) names a ranked photo of album portraits")):
        assert cli.main([*args[:-1], str(csv_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("iqc export: error: labels CSV") and msg in err[0], err
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.xmp")} == mtimes


def test_xmp_sidecars_asset_takes_labels_config(tmp_path, photo_root):
    import dataclasses

    from iqc_dagster import runner

    settings = Settings(photo_root=str(photo_root), db_path=str(tmp_path / "d.duckdb"),
                        output_dir=str(tmp_path / "out"))
    settings = dataclasses.replace(settings, clip=dataclasses.replace(settings.clip, enabled=False))
    labels = _write_labels(tmp_path / "r.csv", ["file", "rating"], [["travel/coffee.jpg", "5"],
                                                                    ["travel/nope.jpg", "2"]])
    with dg.DagsterInstance.ephemeral() as instance:
        runner.materialize_album("travel", settings, instance=instance, log_level="WARNING")
        result = runner.run_job("export_xmp_job", settings, partition_key="travel", instance=instance,
                                log_level="WARNING",
                                ops_config={"xmp_sidecars": {"config": {"labels": str(labels)}}})
        md = result.asset_materializations_for_node("xmp_sidecars")[0].metadata
        assert md["n_review_decisions"].value == 1 and md["n_decisions_applied"].value == 1
        assert md["n_labels_unmatched"].value == 1 and md["n_decision_conflicts"].value == 0
        assert exiftool.read(photo_root / "travel" / "coffee.jpg.xmp")["XMP-xmp:Rating"] == 5
        bad = _write_labels(tmp_path / "bad.csv", ["file", "rating"], [["travel/coffee.jpg", "lots"]])
        with pytest.raises(runner.RunFailed, match="rating 'lots' is not a number"):
            runner.run_job("export_xmp_job", settings, partition_key="travel", instance=instance,
                           log_level="WARNING", ops_config={"xmp_sidecars": {"config": {"labels": str(bad)}}})

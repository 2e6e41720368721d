"""XMP sidecars (core/xmp.py): classes, ratings, labels, keywords; merging into existing sidecars without
losing anything; the user's own ratings kept; every written file read back by ExifTool."""

import datetime as dt

import pytest

from iqc_dagster.core import ratings, xmp
from iqc_dagster_tests import exiftool

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)

#: A sidecar as darktable writes it: its own namespace, an edit history (a sequence of structures),
#: the user's keywords and rating, and a namespace no library knows.
DARKTABLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:darktable="http://darktable.sf.net/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:foo="http://example.com/foo/1.0/"
   xmp:Rating="5"
   xmpMM:DerivedFrom="IMG_1.CR2"
   darktable:xmp_version="5"
   darktable:history_end="2"
   foo:custom="kept  as is &amp; more">
   <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li><rdf:li>iqc/duplicate</rdf:li></rdf:Bag></dc:subject>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>places|iceland</rdf:li></rdf:Bag></lr:hierarchicalSubject>
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="exposure" darktable:enabled="1"
      darktable:params="0000000000000000cdcc4c3e0000803f" darktable:multi_name=""/>
     <rdf:li darktable:num="1" darktable:operation="colorin" darktable:enabled="1"
      darktable:params="gz48eJxjZBgFo2AU0AsAAANwAAE=" darktable:multi_name=""/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def _row(**kw):
    row = {"file": "a.jpg", "final_score": 0.8, "rank": 1, "group_id": 1, "group_size": 1,
           "is_best_in_group": True, "group_kind": "", "duplicate_of": "", "reasons": "+ sharp",
           "sharpness_norm": 0.8, "exposure_norm": 0.8, "weights_id": "w1", "companions": ""}
    row.update(kw)
    return row


def test_classes_follow_the_policy():
    p = xmp.Policy()
    assert xmp.classify(_row(), 10, p) == "pick"
    assert xmp.classify(_row(rank=5), 10, p) == "keep"  # outside the top 20%
    assert xmp.classify(_row(rank=5, group_size=3, is_best_in_group=False, group_kind="duplicate"), 10, p) == "duplicate"
    assert xmp.classify(_row(sharpness_norm=0.05), 10, p) == "reject"
    assert xmp.classify(_row(no_detail="blank frame (no detail)"), 10, p) == "reject"
    # a dark frame of an exposure bracket, a soft frame of a focus stack: never rejects, never duplicates
    for kind in ("bracket", "focus_stack"):
        r = _row(rank=7, exposure_norm=0.02, sharpness_norm=0.05, group_size=3, is_best_in_group=False, group_kind=kind)
        assert xmp.classify(r, 10, p) == "keep"
    assert xmp.Policy(reject_flag=True).rating_of("reject") == -1 and p.rating_of("reject") == 1
    with pytest.raises(xmp.XmpError, match="label"):
        xmp.Policy(labels={"pick": "Mauve"})
    with pytest.raises(xmp.XmpError, match="rating"):
        xmp.Policy(ratings={"pick": 7, "keep": 3, "duplicate": 2, "reject": 1})


def test_new_sidecar_reads_back_in_exiftool(tmp_path):
    entry = xmp.plan([_row(sharpness_norm=0.1, noise_norm=0.1)], xmp.Policy(), album="trip")[0]
    result = xmp.merge(None, entry, xmp.Policy(), now=NOW)
    path = tmp_path / "a.jpg.xmp"
    path.write_bytes(result.data)
    tags = exiftool.read(path)
    assert tags["XMP-xmp:Rating"] == 1 and tags["XMP-xmp:Label"] == "Red"
    assert tags["XMP-dc:Subject"] == ["iqc/reject", "iqc/blurry", "iqc/noisy"]
    assert tags["XMP-lr:HierarchicalSubject"] == ["iqc|reject", "iqc|blurry", "iqc|noisy"]
    assert tags["XMP-digiKam:TagsList"] == ["iqc/reject", "iqc/blurry", "iqc/noisy"]
    assert tags["XMP-iqc:Rank"] == 1 and tags["XMP-iqc:Album"] == "trip" and tags["XMP-iqc:Rating"] == 1
    assert tags["XMP-iqc:Reasons"] == "+ sharp" and tags["XMP-iqc:WeightsId"] == "w1"


def test_merge_keeps_everything_else_and_the_users_rating(tmp_path):
    src = tmp_path / "before.xmp"
    src.write_bytes(DARKTABLE)
    before = exiftool.read(src)
    entry = xmp.plan([_row()], xmp.Policy(), album="trip")[0]
    result = xmp.merge(DARKTABLE, entry, xmp.Policy(), now=NOW)
    assert "kept your rating 5" in result.changes
    out = tmp_path / "after.xmp"
    out.write_bytes(result.data)
    after = exiftool.read(out)
    for key, value in before.items():  # every property iqc does not own: the same value
        if key in ("XMP-dc:Subject", "XMP-lr:HierarchicalSubject"):
            continue
        assert after[key] == value, key
    assert after["XMP-darktable:History"] == before["XMP-darktable:History"]
    assert after["XMP-foo:Custom"] == "kept  as is & more"
    assert after["XMP-xmp:Rating"] == 5 and "XMP-iqc:Rating" not in after  # the user's stars stay
    assert after["XMP-dc:Subject"] == ["holiday", "iqc/pick"]  # old iqc/ keyword replaced, user's kept
    assert after["XMP-lr:HierarchicalSubject"] == ["places|iceland", "iqc|pick"]
    # --overwrite-ratings replaces it
    forced = xmp.merge(DARKTABLE, entry, xmp.Policy(overwrite_ratings=True), now=NOW)
    out.write_bytes(forced.data)
    assert exiftool.read(out)["XMP-xmp:Rating"] == 4


def test_re_export_replaces_iqcs_own_rating_and_writes_nothing_when_unchanged(tmp_path):
    p = xmp.Policy()
    first = xmp.merge(None, xmp.plan([_row()], p)[0], p, now=NOW).data
    second = xmp.merge(first, xmp.plan([_row(rank=9)], p)[0], p, now=NOW)  # now a "keep": iqc's 4 -> 3
    assert second.changed and "rating 4 -> 3" in second.changes
    again = xmp.merge(second.data, xmp.plan([_row(rank=9)], p)[0], p, now=NOW)
    assert not again.changed


def test_a_sidecar_that_is_not_xmp_is_never_touched(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg")
    bad = tmp_path / "a.jpg.xmp"
    bad.write_bytes(b"<x:xmpmeta><rdf:RDF>broken")
    summary = xmp.export([_row()], tmp_path, xmp.Policy())
    assert summary.failed and "not" in summary.failed[0][1] and bad.read_bytes() == b"<x:xmpmeta><rdf:RDF>broken"
    assert photo.read_bytes() == b"jpeg"


def test_sidecar_names_dest_mirror_and_companions(tmp_path):
    album = tmp_path / "album"
    (album / "sub").mkdir(parents=True)
    for n in ("a.jpg", "sub/b.jpg", "IMG_1.JPG", "IMG_1.CR2"):
        (album / n).write_bytes(b"photo")
    (album / "sub" / "b.xmp").write_bytes(DARKTABLE)  # Lightroom-style sidecar exists: edited in place
    rows = [_row(file="a.jpg"), _row(file="sub/b.jpg", rank=2), _row(file="IMG_1.JPG", rank=3, companions="IMG_1.CR2")]
    s = xmp.export(rows, album, xmp.Policy(), style="base", dry_run=True)
    assert len(s.written) == 3 and not any(album.glob("*.xmp"))  # dry run: nothing written
    s = xmp.export(rows, album, xmp.Policy(), style="base")
    assert sorted(p.name for p in album.rglob("*.xmp")) == ["IMG_1.xmp", "a.xmp", "b.xmp"]  # IMG_1.xmp shared
    assert exiftool.read(album / "sub" / "b.xmp")["XMP-darktable:History"]
    dest = tmp_path / "mirror"
    s = xmp.export(rows, album, xmp.Policy(), style="ext", dest=dest)
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.xmp")) == [
        "IMG_1.xmp", "a.xmp", "sub/b.xmp"]  # existing names carried over, the album untouched
    assert exiftool.read(dest / "sub" / "b.xmp")["XMP-xmp:Rating"] == 5
    for n in ("a.jpg", "sub/b.jpg", "IMG_1.JPG", "IMG_1.CR2"):
        assert (album / n).read_bytes() == b"photo"


def test_round_trip_ratings_ignore_iqcs_own_and_read_the_users(tmp_path):
    """export -> the user re-rates one photo in darktable (ExifTool edits the sidecar as it would) ->
    the ratings tune learns from hold only that photo's."""
    album = tmp_path / "trip"
    album.mkdir()
    for n in ("a.jpg", "b.jpg"):
        (album / n).write_bytes(b"photo")
    xmp.export([_row(file="a.jpg"), _row(file="b.jpg", rank=2)], album, xmp.Policy())
    found, _ = ratings.collect_ratings([("trip", "a.jpg"), ("trip", "b.jpg")], tmp_path)
    assert found == {}  # only iqc's own stars so far: nothing to learn from
    exiftool.write(album / "b.jpg.xmp", "-XMP-xmp:Rating=1")
    found, _ = ratings.collect_ratings([("trip", "a.jpg"), ("trip", "b.jpg")], tmp_path)
    assert found == {("trip", "b.jpg"): ratings.Rating(1.0, "sidecar")}
    # a re-export keeps the user's new rating
    s = xmp.export([_row(file="a.jpg"), _row(file="b.jpg", rank=2)], album, xmp.Policy())
    assert s.kept_user_ratings == 1 and exiftool.read(album / "b.jpg.xmp")["XMP-xmp:Rating"] == 1


def test_tune_learns_from_the_users_re_rating_not_from_iqcs_export(tmp_path):
    """The loop through the function `iqc tune` uses to gather preferences (core/tuning.py)."""
    import pandas as pd

    from iqc_dagster.core import tuning

    album = tmp_path / "trip"
    album.mkdir()
    files = [f"p{i}.jpg" for i in range(12)]
    for n in files:
        (album / n).write_bytes(b"photo")
    rows = [_row(file=n, rank=i + 1, final_score=1 - i / 20) for i, n in enumerate(files)]
    xmp.export(rows, album, xmp.Policy())
    scores = pd.DataFrame({"album": "trip", "path": files, "content_hash": files,
                           "sharpness_norm": [i / 12 for i in range(12)], "exposure_norm": 0.5})
    synthetic_used = []

    def synthetic():
        synthetic_used.append(True)
        raise RuntimeError("synthetic pairs requested")

    with pytest.raises(RuntimeError, match="synthetic"):  # only iqc's own stars: nothing of the user's
        tuning.gather_preferences(scores, tmp_path, synthetic=synthetic, min_pairs=1)
    for i, n in enumerate(files):  # the user re-rates every photo in darktable
        exiftool.write(album / f"{n}.xmp", f"-XMP-xmp:Rating={1 + i % 5}")
    prefs = tuning.gather_preferences(scores, tmp_path, synthetic=synthetic, min_pairs=1)
    # 11, not 12: p7 was re-rated to 3 stars, exactly iqc's "keep": indistinguishable from untouched
    assert prefs.source == "ratings" and "ratings: 11 from sidecar" in " ".join(prefs.notes)
    assert "trip/p7.jpg" not in set(prefs.scores.loc[prefs.scores["rating"].notna(), "item"])

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


def _ranked_album(tmp_path, n: int = 12):
    """An album folder "trip" of ``n`` stand-in photo files and its ranked rows, best first."""
    album = tmp_path / "trip"
    album.mkdir()
    files = [f"p{i}.jpg" for i in range(n)]
    for name in files:
        (album / name).write_bytes(b"photo")
    return album, files, [_row(file=name, rank=i + 1, final_score=1 - i / 20) for i, name in enumerate(files)]


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

    album, files, rows = _ranked_album(tmp_path)
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


# --- the user's review decisions (a labels CSV from the review page) -----------------------------------

def _labels(path, header, rows):
    """A labels CSV as the review page's export writes it (CRLF, quoted when needed)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def test_review_decisions_become_ratings_that_tune_learns(tmp_path):
    """export -> review page -> labels CSV -> export --labels -> the ratings `iqc tune` gathers are all the
    user's, including the decisions that equal what iqc had suggested (4 for a pick, 3 for a keep)."""
    import pandas as pd

    from iqc_dagster.core import tuning

    album, files, rows = _ranked_album(tmp_path)
    first = xmp.export(rows, album, xmp.Policy())  # iqc's suggestions only: p0-p2 pick (4), others keep (3)
    assert first.by_class == {"pick": 3, "keep": 9}
    photos = [("trip", n) for n in files]
    assert ratings.collect_ratings(photos, tmp_path)[0] == {}

    stars = {n: 1 + i % 5 for i, n in enumerate(files)}  # p3 and p8 get 4 stars, p2 and p7 get 3 ...
    stars["p11.jpg"] = -1  # ... and p11 is rejected (X on the page)
    csv = _labels(tmp_path / "trip-ratings.csv", ["file", "rating"], [[str(album / n), v] for n, v in stars.items()])
    decisions = xmp.read_decisions(csv, rows, album="trip", album_dir=album)
    assert decisions.n_matched == 12 and not decisions.unmatched
    assert decisions.by_file["p11.jpg"] == xmp.Decision("reject")
    assert decisions.by_file["p0.jpg"] == xmp.Decision("stars", 1)

    # a dry run says what would change and writes nothing
    before = {n: (album / f"{n}.xmp").read_bytes() for n in files}
    log = []
    dry = xmp.export(rows, album, xmp.Policy(), dry_run=True, decisions=decisions.by_file, log=log.append)
    assert {n: (album / f"{n}.xmp").read_bytes() for n in files} == before
    assert dry.decisions_applied == 12 and dry.decision_conflicts == 0
    assert any("p0.jpg.xmp" in m and "rating 4 -> 1 (your review decision: 1 star(s))" in m for m in log), log

    s = xmp.export(rows, album, xmp.Policy(), decisions=decisions.by_file, now=NOW)
    assert s.decisions_applied == 12 and s.kept_user_ratings == 0 and not s.failed
    tags = {n: exiftool.read(album / f"{n}.xmp") for n in files}
    for n in files:
        want = 1 if n == "p11.jpg" else stars[n]  # a reject gets the policy's reject rating (1)
        assert tags[n]["XMP-xmp:Rating"] == want, n
        assert tags[n]["XMP-iqc:RatingSource"] == "review" and "XMP-iqc:Rating" not in tags[n]
    assert tags["p3.jpg"]["XMP-iqc:SuggestedRating"] == 3 and tags["p11.jpg"]["XMP-iqc:Decision"] == "reject"
    assert tags["p0.jpg"]["XMP-xmp:Label"] == "Green"  # label and keywords stay iqc's view of the photo

    found, _ = ratings.collect_ratings(photos, tmp_path)
    assert {k: r.value for k, r in found.items()} == {("trip", n): float(max(v, 1)) for n, v in stars.items()}
    assert {r.source for r in found.values()} == {"sidecar"}
    # through the function `iqc tune` gathers its preferences with: all 12 are the user's (a re-rating
    # in darktable to iqc's own stars could not be told apart: test above, 11)
    scores = pd.DataFrame({"album": "trip", "path": files, "content_hash": files,
                           "sharpness_norm": [i / 12 for i in range(12)], "exposure_norm": 0.5})

    def synthetic():
        raise AssertionError("the synthetic pairs were used: the review decisions were not learned")

    prefs = tuning.gather_preferences(scores, tmp_path, synthetic=synthetic, min_pairs=1)
    assert prefs.source == "ratings" and "ratings: 12 from sidecar" in " ".join(prefs.notes)

    # the same decisions again: nothing to write; a plain export afterwards keeps them as the user's
    again = xmp.export(rows, album, xmp.Policy(), decisions=decisions.by_file)
    assert not again.written and again.decisions_applied == 12
    plain = xmp.export(rows, album, xmp.Policy())
    assert plain.kept_user_ratings == 12 and not plain.written
    assert exiftool.read(album / "p8.jpg.xmp")["XMP-xmp:Rating"] == 4


def test_review_decision_against_a_rating_set_elsewhere(tmp_path):
    """A review decision replaces iqc's suggestion and an earlier review decision; a differing rating the
    user set in another program is kept unless overwrite_ratings, and counted as a conflict."""
    album = tmp_path / "trip"
    album.mkdir()
    (album / "a.jpg").write_bytes(b"photo")
    (album / "a.jpg.xmp").write_bytes(DARKTABLE)  # rated 5 in darktable
    rows = [_row(file="a.jpg")]
    reject = {"a.jpg": xmp.Decision("reject")}
    s = xmp.export(rows, album, xmp.Policy(), decisions=reject)
    assert (s.decision_conflicts, s.conflicts_kept, s.decisions_applied, s.kept_user_ratings) == (1, 1, 0, 1)
    t = exiftool.read(album / "a.jpg.xmp")
    assert t["XMP-xmp:Rating"] == 5 and "XMP-iqc:RatingSource" not in t
    s = xmp.export(rows, album, xmp.Policy(overwrite_ratings=True, reject_flag=True), decisions=reject)
    assert (s.decision_conflicts, s.conflicts_kept, s.decisions_applied) == (1, 0, 1)
    t = exiftool.read(album / "a.jpg.xmp")
    assert t["XMP-xmp:Rating"] == -1 and t["XMP-iqc:ReviewRating"] == -1  # --reject-flag: the XMP reject
    assert len(t["XMP-darktable:History"]) == 2 and "holiday" in t["XMP-dc:Subject"]  # everything else kept
    # a newer review decision replaces the older one without --overwrite-ratings: iqc wrote it
    s = xmp.export(rows, album, xmp.Policy(), decisions={"a.jpg": xmp.Decision("pick")})
    assert (s.decision_conflicts, s.decisions_applied) == (0, 1)
    assert exiftool.read(album / "a.jpg.xmp")["XMP-xmp:Rating"] == 4
    # re-rated in darktable after that: the user's newest rating there wins over the CSV's older one
    exiftool.write(album / "a.jpg.xmp", "-XMP-xmp:Rating=2")
    s = xmp.export(rows, album, xmp.Policy(), decisions={"a.jpg": xmp.Decision("pick")})
    assert (s.decision_conflicts, s.conflicts_kept) == (1, 1)
    assert exiftool.read(album / "a.jpg.xmp")["XMP-xmp:Rating"] == 2
    assert ratings.sidecar_rating(album / "a.jpg") == 2.0
    # overwriting with iqc's own suggestion drops the review record
    s = xmp.export(rows, album, xmp.Policy(overwrite_ratings=True))
    t = exiftool.read(album / "a.jpg.xmp")
    assert t["XMP-xmp:Rating"] == 4 and t["XMP-iqc:Rating"] == 4 and "XMP-iqc:RatingSource" not in t
    assert ratings.sidecar_rating(album / "a.jpg") is None  # iqc's own again: not learned


def test_read_decisions_matches_like_tune_and_reports_the_rest(tmp_path):
    import os

    from iqc_dagster.core import names

    album = tmp_path / "trip"
    (album / "sub").mkdir(parents=True)
    odd = os.fsdecode(b"caf\xe9.jpg")  # a Latin-1 name: the ranked CSV and the page write its key
    for n in ("IMG_1.JPG", "IMG_1.CR2", "sub/b.jpg", odd, "c.jpg"):
        (album / n).write_bytes(b"photo")
    odd_key = names.to_key(odd)
    assert odd_key == "caf\\xe9.jpg"
    rows = [_row(file="IMG_1.JPG", companions="IMG_1.CR2"), _row(file="sub/b.jpg", rank=2),
            _row(file=odd_key, rank=3), _row(file="c.jpg", rank=4)]
    csv = _labels(tmp_path / "picks.csv", ["file", "pick"], [
        ["IMG_1.CR2", "pick"],  # the RAW of a RAW + JPEG pair names its shot
        ["trip/sub/b.jpg", "reject"],  # album/photo.jpg
        [names.to_key(str(album / odd)), "pick"],  # absolute, escaped, as the page exports it
        ["c.jpg", "pick"], ["c.jpg", ""],  # the last row for a photo wins: no decision
        ["other/x.jpg", "pick"], ["/elsewhere/y.jpg", "reject"]])
    d = xmp.read_decisions(csv, rows, album="trip", album_dir=album)
    assert d.by_file == {"IMG_1.JPG": xmp.Decision("pick"), "sub/b.jpg": xmp.Decision("reject"),
                         odd_key: xmp.Decision("pick")}
    assert (d.n_rows, d.n_matched, d.n_undecided) == (7, 3, 1)
    assert d.unmatched == ["other/x.jpg", "/elsewhere/y.jpg"]
    note = xmp.unmatched_note("picks.csv", d, "trip")
    assert note == ("labels CSV picks.csv: 2 of 7 row(s) matched no ranked photo of album trip and were not "
                    "used (e.g. other/x.jpg, /elsewhere/y.jpg)")
    entries = {e.file: e for e in xmp.plan(rows, xmp.Policy(), "trip", d.by_file)}
    assert entries["IMG_1.CR2"].decision == entries["IMG_1.JPG"].decision == "pick"
    assert entries[odd_key].rating == 4 and entries["sub/b.jpg"].rating == 1 and entries["c.jpg"].decision is None

    # tune matches the page's escaped absolute names too (they used to miss: backslashes became slashes)
    found, unmatched = ratings.match_labels([{"file": names.to_key(str(album / odd)), "rating": 5}],
                                            [("trip", odd_key)], tmp_path)
    assert found == {("trip", odd_key): 5.0} and unmatched == []

    # a CSV for another album, a rating that is no star rating, a CSV that is not one: one-line errors
    with pytest.raises(ratings.LabelsError, match=r"none of its 2 row\(s\) names a ranked photo of album trip"):
        xmp.read_decisions(_labels(tmp_path / "o.csv", ["file", "pick"], [["x.jpg", "pick"], ["y.jpg", "pick"]]),
                           rows, album="trip", album_dir=album)
    with pytest.raises(ratings.LabelsError, match=r"r.csv:2: rating 7 for c.jpg is not a star rating"):
        xmp.read_decisions(_labels(tmp_path / "r.csv", ["file", "rating"], [["c.jpg", "7"]]), rows,
                           album="trip", album_dir=album)
    (tmp_path / "bin.csv").write_bytes(b"file,pick\n\xff\xfe\x00x,pick\n")
    with pytest.raises(ratings.LabelsError, match="is not UTF-8 text"):
        xmp.read_decisions(tmp_path / "bin.csv", rows, album="trip", album_dir=album)
    with pytest.raises(ratings.LabelsError, match="is a directory"):
        xmp.read_decisions(tmp_path, rows, album="trip", album_dir=album)

"""Reading the user's ratings: XMP sidecars, embedded XMP, EXIF, labels CSV (core.ratings, pure)."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from iqc_dagster.core import ratings

XMP_ATTR = """<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="{r}"/>
</rdf:RDF></x:xmpmeta><?xpacket end="w"?>"""

XMP_ELEMENT = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:creator>me</dc:creator><xmp:Rating>{r}</xmp:Rating></rdf:Description></rdf:RDF></x:xmpmeta>"""


def _photo(path, **save_kw):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path, format="JPEG", **save_kw)
    return path


@pytest.mark.parametrize("text,expected", [
    (XMP_ATTR.format(r=4), 4.0), (XMP_ELEMENT.format(r=2), 2.0), (XMP_ATTR.format(r=-1), -1.0),
    (XMP_ATTR.format(r=0), None), (XMP_ATTR.format(r="x"), None), ("<x:xmpmeta", None), ("", None)])
def test_parse_xmp_rating(text, expected):
    assert ratings.parse_xmp_rating(text) == expected


def test_xmp_with_a_dtd_is_refused_not_expanded():
    bomb = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            + XMP_ATTR.format(r=5).replace('xmp:Rating="5"', 'xmp:Rating="5" xmp:Label="&b;"'))
    assert ratings.parse_xmp_rating(bomb) is None


def test_sidecar_rating_both_naming_conventions(tmp_path):
    a = _photo(tmp_path / "a.jpg")
    (tmp_path / "a.xmp").write_text(XMP_ATTR.format(r=3))  # Lightroom: a.xmp
    b = _photo(tmp_path / "b.JPG")
    (tmp_path / "b.JPG.xmp").write_text(XMP_ELEMENT.format(r=5))  # darktable: b.JPG.xmp
    c = _photo(tmp_path / "c.jpg")
    assert ratings.file_rating(a) == ratings.Rating(3.0, "sidecar")
    assert ratings.file_rating(b) == ratings.Rating(5.0, "sidecar")
    assert ratings.file_rating(c) is None


def test_embedded_xmp_and_exif_ratings(tmp_path):
    x = _photo(tmp_path / "x.jpg", xmp=XMP_ATTR.format(r=4).encode())
    exif = Image.Exif()
    exif[ratings.EXIF_RATING] = 2
    e = _photo(tmp_path / "e.jpg", exif=exif)
    pct = Image.Exif()
    pct[ratings.EXIF_RATING_PERCENT] = 75
    p = _photo(tmp_path / "p.jpg", exif=pct)
    assert ratings.file_rating(x) == ratings.Rating(4.0, "xmp")
    assert ratings.file_rating(e) == ratings.Rating(2.0, "exif")
    assert ratings.file_rating(p) == ratings.Rating(4.0, "exif")
    assert [ratings.percent_to_stars(v) for v in (0, 1, 25, 50, 75, 99, 100)] == [None, 1, 2, 3, 4, 5, 5]


def test_sidecar_wins_over_embedded(tmp_path):
    x = _photo(tmp_path / "x.jpg", xmp=XMP_ATTR.format(r=1).encode())
    (tmp_path / "x.jpg.xmp").write_text(XMP_ATTR.format(r=5))
    assert ratings.file_rating(x) == ratings.Rating(5.0, "sidecar")


def test_labels_csv_rating_and_pick_matching(tmp_path):
    root = tmp_path / "root"
    for album, names in {"a": ["x.jpg", "sub/y.jpg"], "b": ["x.jpg", "z.jpg"]}.items():
        for n in names:
            (root / album / n).parent.mkdir(parents=True, exist_ok=True)
            _photo(root / album / n)
    photos = [("a", "x.jpg"), ("a", "sub/y.jpg"), ("b", "x.jpg"), ("b", "z.jpg")]
    csv = tmp_path / "labels.csv"
    csv.write_text("file,rating\n"
                   f"{root / 'a' / 'x.jpg'},5\n"  # absolute
                   "a/sub/y.jpg,2\n"  # relative to the root
                   "z.jpg,4\n"  # inside its album, unambiguous
                   "x.jpg,1\n"  # ambiguous: two albums have x.jpg
                   "nope.jpg,3\n")
    got, notes = ratings.collect_ratings(photos, root, csv)
    assert {k: r.value for k, r in got.items()} == {("a", "x.jpg"): 5.0, ("a", "sub/y.jpg"): 2.0,
                                                     ("b", "z.jpg"): 4.0}
    assert all(r.source == "labels" for r in got.values())
    assert "2 row(s) matched no photo" in notes[0]

    picks = tmp_path / "picks.csv"
    picks.write_text("album,file,pick\na,x.jpg,pick\nb,x.jpg,reject\nb,z.jpg,0\n")
    got, _ = ratings.collect_ratings(photos, root, picks)
    assert {k: r.value for k, r in got.items()} == {("a", "x.jpg"): 1.0, ("b", "x.jpg"): -1.0,
                                                     ("b", "z.jpg"): 0.0}


def test_labels_csv_wins_over_file_ratings(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    _photo(root / "a" / "x.jpg")
    (root / "a" / "x.xmp").write_text(XMP_ATTR.format(r=1))
    _photo(root / "a" / "y.jpg")
    (root / "a" / "y.xmp").write_text(XMP_ATTR.format(r=2))
    csv = tmp_path / "l.csv"
    csv.write_text("file,rating\nx.jpg,5\n")
    got, _ = ratings.collect_ratings([("a", "x.jpg"), ("a", "y.jpg")], root, csv)
    assert got[("a", "x.jpg")] == ratings.Rating(5.0, "labels")
    assert got[("a", "y.jpg")] == ratings.Rating(2.0, "sidecar")


@pytest.mark.parametrize("content,match", [
    ("name,score\nx.jpg,3\n", "needs a 'file' column"),
    ("file,rating\nx.jpg,great\n", "not a number"),
    ("file,pick\nx.jpg,maybe\n", "not understood"),
])
def test_bad_labels_csv_is_a_clear_error(tmp_path, content, match):
    csv = tmp_path / "l.csv"
    csv.write_text(content)
    with pytest.raises(ratings.LabelsError, match=match):
        ratings.read_labels_csv(csv)
    with pytest.raises(ratings.LabelsError, match="does not exist"):
        ratings.read_labels_csv(tmp_path / "missing.csv")


def test_reading_ratings_never_modifies_files(tmp_path):
    x = _photo(tmp_path / "x.jpg", xmp=XMP_ATTR.format(r=4).encode())
    (tmp_path / "x.jpg.xmp").write_text(XMP_ATTR.format(r=2))

    def snap():
        return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
                for p in tmp_path.iterdir()}

    before = snap()
    ratings.collect_ratings([("", "x.jpg")], tmp_path, None)
    ratings.file_rating(x)
    assert snap() == before

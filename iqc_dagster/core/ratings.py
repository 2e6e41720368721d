"""The user's own ratings of their photos: XMP sidecars, embedded XMP/EXIF ratings, a labels CSV.

Ratings are what :mod:`iqc_dagster.core.tuning` learns the fusion weights from when they exist. Scale:
stars 1..5, ``-1`` = rejected (the XMP convention Lightroom, darktable and digiKam write). An XMP
``xmp:Rating`` of 0 means *unrated* and is ignored.

Where a photo's rating comes from, first match wins:

1. a **labels CSV** given by the user (``file,rating`` with any number, or ``file,pick`` with
   ``pick``/``1`` = 1, ``0``/empty = 0, ``reject``/``-1`` = -1); ``file`` is an absolute path, a path
   relative to the photo root (``album/photo.jpg``) or a path inside the album when that is
   unambiguous; an optional ``album`` column disambiguates;
2. an **XMP sidecar** beside the photo: ``photo.jpg.xmp`` (darktable) or ``photo.xmp`` (Lightroom),
   any case of ``.xmp``; ``xmp:Rating`` as an attribute or as an element. A rating equal to the one
   ``iqc export xmp`` recorded in ``iqc:rating`` is iqc's own and is ignored: only a rating the user
   changed afterwards counts;
3. an **embedded XMP packet** (``<x:xmpmeta …>``) in the first :data:`XMP_SCAN_BYTES` of the file;
4. the **EXIF** ``Rating`` tag (0x4746, stars) or ``RatingPercent`` (0x4749, Windows' 1/25/50/75/99).

Photos and sidecars are only ever opened for reading. XML is parsed with the standard library after
refusing any document with a DTD (``<!DOCTYPE``/``<!ENTITY``), so no entity is ever expanded or fetched.

Pure Python: no Dagster import.
"""

from __future__ import annotations

import csv
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from iqc_dagster.core import names

#: XMP namespace of ``xmp:Rating``.
XMP_NS = "http://ns.adobe.com/xap/1.0/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
#: iqc's own namespace in the sidecars it exports (core/xmp.py): ``iqc:rating`` is the rating it wrote.
IQC_NS = "http://ns.iqc.invalid/xmp/1.0/"
#: How much of a photo file is searched for an embedded XMP packet (JPEG/PNG/WebP keep it near the start).
XMP_SCAN_BYTES = 4 << 20
#: A sidecar or packet larger than this is not XMP we want to parse.
MAX_XMP_BYTES = 2 << 20

EXIF_RATING = 0x4746
EXIF_RATING_PERCENT = 0x4749

REJECT = -1.0

_PACKET = re.compile(rb"<x:xmpmeta[\s>].*?</x:xmpmeta>", re.S)
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.I)

_PICK = {"pick": 1.0, "picked": 1.0, "1": 1.0, "yes": 1.0, "true": 1.0, "y": 1.0, "x": 1.0,
         "0": 0.0, "": 0.0, "none": 0.0, "unflagged": 0.0,
         "reject": -1.0, "rejected": -1.0, "-1": -1.0, "no": -1.0, "false": -1.0, "n": -1.0}


class LabelsError(ValueError):
    """A labels CSV that cannot be used; ``str(exc)`` is a one-line message for users."""


@dataclass(frozen=True)
class Rating:
    value: float  # stars (1..5), -1 for reject, or a labels CSV's own number
    source: str  # "labels", "sidecar", "xmp", "exif"


# --- XMP ----------------------------------------------------------------------------------------

def parse_xmp_rating(data: bytes | str) -> float | None:
    """``xmp:Rating`` of an XMP document or packet (attribute or element); None when absent/unrated.

    A rating of 0 (unrated) gives None; -1 (rejected) is kept. Documents with a DTD are refused.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_XMP_BYTES or _DTD.search(data):
        return None
    m = _PACKET.search(data)
    blob = m.group(0) if m else data.strip()
    try:
        root = ET.fromstring(blob)
    except ET.ParseError:
        return None
    attr = f"{{{XMP_NS}}}Rating"
    exported = _iqc_rating(root)
    for el in root.iter():
        raw = el.get(attr)
        if raw is None and el.tag == attr:
            raw = (el.text or "").strip()
        if raw is None or raw == "":
            continue
        try:
            v = float(raw)
        except ValueError:
            continue
        if not math.isfinite(v) or v == 0:
            return None
        if exported is not None and v == exported:  # the rating iqc itself exported, not the user's
            return None
        return REJECT if v < 0 else min(5.0, v)
    return None


def _iqc_rating(root) -> float | None:
    """The rating iqc recorded when it exported this sidecar (``iqc:rating``, core/xmp.py), if any."""
    attr = f"{{{IQC_NS}}}rating"
    for el in root.iter():
        raw = el.get(attr)
        if raw is None and el.tag == attr:
            raw = (el.text or "").strip()
        if raw:
            try:
                return float(raw)
            except ValueError:
                return None
    return None


def sidecar_paths(photo: str | os.PathLike) -> list[Path]:
    """Candidate XMP sidecars of ``photo``, most specific first (``a.jpg.xmp`` before ``a.xmp``)."""
    p = Path(photo)
    names = [p.name + ".xmp", p.name + ".XMP", p.stem + ".xmp", p.stem + ".XMP"]
    return [p.with_name(n) for n in dict.fromkeys(names)]


def _read_limited(path: Path, limit: int) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return None


def sidecar_rating(photo: str | os.PathLike) -> float | None:
    for sc in sidecar_paths(photo):
        if sc.is_file():
            data = _read_limited(sc, MAX_XMP_BYTES + 1)
            if data is not None:
                v = parse_xmp_rating(data)
                if v is not None:
                    return v
    return None


def embedded_xmp_rating(photo: str | os.PathLike, scan_bytes: int = XMP_SCAN_BYTES) -> float | None:
    """``xmp:Rating`` of the XMP packet embedded in the file (JPEG APP1, PNG iTXt, TIFF, WebP…)."""
    data = _read_limited(Path(photo), scan_bytes)
    if not data or b"<x:xmpmeta" not in data:
        return None
    for m in _PACKET.finditer(data):
        v = parse_xmp_rating(m.group(0))
        if v is not None:
            return v
    return None


def percent_to_stars(p: float) -> float | None:
    """Windows' RatingPercent (1, 25, 50, 75, 99) → stars 1..5; 0 or less = unrated."""
    if not math.isfinite(p) or p <= 0:
        return None
    return float(min(5, round(min(p, 100) / 25) + 1))


def exif_rating(photo: str | os.PathLike) -> float | None:
    """EXIF ``Rating`` (0x4746) or, failing that, ``RatingPercent`` (0x4749) from IFD0; header only."""
    from PIL import Image

    try:
        with Image.open(photo) as im:
            exif = im.getexif()
            stars, pct = exif.get(EXIF_RATING), exif.get(EXIF_RATING_PERCENT)
    except Exception:  # not an image, a corrupt EXIF block: no rating, never an error
        return None
    try:
        if stars is not None:
            v = float(stars)
            if v < 0 or v > 60000:  # stored as SHORT: -1 reads back as 65535
                return REJECT
            if v > 0:
                return min(5.0, v)
        if pct is not None:
            return percent_to_stars(float(pct))
    except (TypeError, ValueError):
        return None
    return None


def file_rating(photo: str | os.PathLike) -> Rating | None:
    """The rating stored with one photo: sidecar, then embedded XMP, then EXIF; None when unrated."""
    for source, fn in (("sidecar", sidecar_rating), ("xmp", embedded_xmp_rating), ("exif", exif_rating)):
        v = fn(photo)
        if v is not None:
            return Rating(v, source)
    return None


# --- labels CSV ---------------------------------------------------------------------------------

def parse_pick(value: str) -> float:
    v = str(value).strip().lower()
    if v in _PICK:
        return _PICK[v]
    raise LabelsError(f"pick value {value!r} not understood (use pick/reject/1/0/-1)")


def read_labels_csv(path: str | os.PathLike) -> list[dict]:
    """Rows ``{"file", "album" (or None), "rating", "kind", "line"}`` of a labels CSV (``file`` + ``rating``
    or ``pick``). ``kind`` is ``"pick"`` when the value was a pick/reject flag (a ``pick`` column, or
    ``pick``/``reject`` written in a ``rating`` column: 1 = pick, 0 = none, -1 = reject), else
    ``"rating"`` (a number, e.g. stars); ``line`` is the row's line number in the file. Anything that cannot be used raises
    :class:`LabelsError` with a one-line message."""
    try:
        return _read_labels_csv(path)
    except UnicodeDecodeError:
        raise LabelsError(f"labels CSV {path} is not UTF-8 text") from None
    except csv.Error as exc:
        raise LabelsError(f"labels CSV {path} is not a readable CSV: {exc}") from None
    except OSError as exc:
        raise LabelsError(f"cannot read labels CSV {path}: {exc.strerror or exc}") from None


def _read_labels_csv(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        raise LabelsError(f"labels CSV {path} is a directory: pass the CSV file itself")
    if not path.is_file():
        raise LabelsError(f"labels CSV {path} does not exist" if not os.path.lexists(path)
                          else f"labels CSV {path} is not a regular file")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = {(h or "").strip().lower(): h for h in (reader.fieldnames or [])}
        if "file" not in fields or not ({"rating", "pick"} & set(fields)):
            raise LabelsError(f"labels CSV {path} needs a 'file' column and a 'rating' or 'pick' column "
                              f"(found: {', '.join(fields) or 'none'})")
        rows = []
        for i, row in enumerate(reader, start=2):
            name = (row.get(fields["file"]) or "").strip()
            if not name:
                continue
            album = None
            if "album" in fields:
                album = (row.get(fields["album"]) or "").strip() or None
            if "rating" in fields:
                raw = (row.get(fields["rating"]) or "").strip()
                if raw == "":
                    continue
                kind = "rating"
                try:
                    value = float(raw)
                except ValueError:
                    try:
                        value = parse_pick(raw)  # "pick"/"reject" in a rating column
                        kind = "pick"
                    except LabelsError:
                        raise LabelsError(f"{path}:{i}: rating {raw!r} is not a number") from None
                if not math.isfinite(value):
                    raise LabelsError(f"{path}:{i}: rating {raw!r} is not finite")
            else:
                kind = "pick"
                try:
                    value = parse_pick(row.get(fields["pick"]) or "")
                except LabelsError as exc:
                    raise LabelsError(f"{path}:{i}: {exc}") from None
            rows.append({"file": name, "album": album, "rating": value, "kind": kind, "line": i})
    return rows


def label_matcher(photos: Iterable[tuple[str, str]], photo_root: str | os.PathLike, *,
                  album_dirs: Mapping[str, str | os.PathLike] | None = None,
                  ) -> Callable[[str, str | None], tuple[str, str] | None]:
    """``find(file, album=None)``: the ``(album, path)`` photo a labels row names, or None (the rules of
    :func:`match_labels`)."""
    photos = list(photos)
    root = Path(photo_root).resolve()
    dirs = {a: Path(d).resolve() for a, d in (album_dirs or {}).items()}

    def folder(a: str) -> Path:
        return dirs.get(a) or (root / names.from_key(a))

    by_abs = {str((folder(a) / names.from_key(p)).resolve()): (a, p) for a, p in photos}
    by_rel = {f"{a}/{p}": (a, p) for a, p in photos}
    by_inner: dict[str, list[tuple[str, str]]] = {}
    for a, p in photos:
        by_inner.setdefault(p, []).append((a, p))
    known = set(photos)

    def lookup(name: str, album: str | None) -> tuple[str, str] | None:
        if album is not None:
            return (album, name) if (album, name) in known else None
        if os.path.isabs(name):
            try:
                return by_abs.get(str(Path(names.from_key(name)).resolve()))
            except (OSError, ValueError):
                return None
        key = by_rel.get(name.removeprefix("./"))
        if key is None:
            cands = by_inner.get(name.removeprefix("./"), [])
            key = cands[0] if len(cands) == 1 else None
        return key

    def find(name: str, album: str | None = None) -> tuple[str, str] | None:
        name = str(name)
        key = lookup(name, album)
        if key is None and "\\" in name:
            key = lookup(name.replace("\\", "/"), album)
        return key

    return find


def match_labels(labels: Iterable[Mapping], photos: Iterable[tuple[str, str]],
                 photo_root: str | os.PathLike, *, album_dirs: Mapping[str, str | os.PathLike] | None = None,
                 ) -> tuple[dict[tuple[str, str], float], list[str]]:
    """Map labels rows onto ``(album, path)`` photos; returns (ratings, names that matched no photo).

    ``file`` may be absolute, relative to the photo root (``album/x.jpg``), or relative to its album
    (``x.jpg``; only when a single album has such a photo, or when the row names its ``album``). Names
    are keys (:mod:`iqc_dagster.core.names`: the form the ranked CSV and the review page write, so an
    escaped ``caf\\xe9.jpg`` matches as written); a name that matches nothing as written is tried once
    more with backslashes read as folder separators (``album\\x.jpg``). ``album_dirs`` gives the folder
    of an album that is not ``photo_root/<album>`` (``iqc rank --input-dir`` anywhere), for absolute names.
    """
    find = label_matcher(photos, photo_root, album_dirs=album_dirs)
    out, unmatched = {}, []
    for row in labels:
        name = str(row["file"])
        album = row.get("album")
        key = find(name, album)
        if key is None:
            unmatched.append(name)
        else:
            out[key] = float(row["rating"])
    return out, unmatched


def collect_ratings(photos: Iterable[tuple[str, str]], photo_root: str | os.PathLike,
                    labels_csv: str | os.PathLike | None = None, *, read_files: bool = True,
                    ) -> tuple[dict[tuple[str, str], Rating], list[str]]:
    """Ratings of ``(album, path)`` photos: labels CSV first, then each file's own rating.

    Returns ``(ratings, notes)``; photos without any rating are absent.
    """
    photos = list(photos)
    notes: list[str] = []
    out: dict[tuple[str, str], Rating] = {}
    if labels_csv:
        matched, unmatched = match_labels(read_labels_csv(labels_csv), photos, photo_root)
        out.update({k: Rating(v, "labels") for k, v in matched.items()})
        extra = f", {len(unmatched)} row(s) matched no photo (e.g. {unmatched[0]})" if unmatched else ""
        notes.append(f"labels CSV {labels_csv}: {len(matched)} photo(s) matched{extra}")
    if read_files:
        root = Path(photo_root)
        for album, path in photos:
            if (album, path) in out:
                continue
            r = file_rating(root / names.from_key(album) / names.from_key(path))
            if r is not None:
                out[(album, path)] = r
    return out, notes


__all__ = ["LabelsError", "Rating", "collect_ratings", "embedded_xmp_rating", "exif_rating", "file_rating",
           "label_matcher", "match_labels", "parse_pick", "parse_xmp_rating", "percent_to_stars", "read_labels_csv",
           "sidecar_paths", "sidecar_rating"]

"""XMP sidecars: iqc's ranking as stars, colour labels and keywords that Lightroom, darktable, digiKam
(and Immich, Capture One...) read; merged into a user's existing sidecar without losing anything.

**What is written** per ranked photo (:func:`plan`, from one row of the ranked CSV):

* ``xmp:Rating`` from its *class* (:func:`classify`) through :class:`Policy` (defaults leave 5 stars to
  the user): ``pick`` 4 (best of its group, or alone, and in the album's top :attr:`Policy.top_share`),
  ``keep`` 3, ``duplicate`` 2 (a lesser member of a duplicate or burst group), ``reject`` 1 (a clear
  technical reject: blank or tiny frame, blurry, badly exposed); ``-1`` (the XMP "rejected") for rejects
  only with :attr:`Policy.reject_flag`. Frames of an exposure bracket or a focus stack are never rejects.
* ``xmp:Label``: a colour name per class (``pick`` Green, ``duplicate`` Yellow, ``reject`` Red).
* Keywords under ``iqc/`` (``iqc/pick``, ``iqc/best-in-group``, ``iqc/duplicate``, ``iqc/burst``,
  ``iqc/bracket``, ``iqc/focus-stack``, ``iqc/reject``, ``iqc/blurry``, ``iqc/noisy``, ``iqc/dark``,
  ``iqc/clipped-highlights``, ``iqc/blank``) in ``dc:subject`` (``iqc/pick``), ``lr:hierarchicalSubject``
  (``iqc|pick``, Lightroom and darktable) and ``digiKam:TagsList`` (``iqc/pick``). Earlier ``iqc/``
  keywords are replaced; every other keyword is kept.
* iqc's own record in the ``iqc:`` namespace (:data:`IQC_NS`): ``finalScore``, ``rank``, ``rankOf``,
  ``album``, ``class``, ``groupId``, ``groupSize``, ``groupKind``, ``bestInGroup``, ``duplicateOf``,
  ``reasons``, ``weightsId``, and ``rating`` / ``label``: the values iqc itself put in ``xmp:Rating`` /
  ``xmp:Label``.

**The user's own values win.** A ``xmp:Rating`` (other than 0, "unrated") that is not the one iqc
recorded in ``iqc:rating`` is the user's: it is kept unless :attr:`Policy.overwrite_ratings` (the same
for ``xmp:Label`` and ``iqc:label``). :mod:`iqc_dagster.core.ratings` uses the same record the other
way: a rating equal to ``iqc:rating`` is iqc's, not a judgement to learn from.

**The user's review decisions** (:func:`read_decisions`: the review page's labels CSV, ``iqc export xmp
--labels``) are the user's newest word: a decision replaces iqc's suggestion, an unrated sidecar and an
earlier review decision (``xmp:Rating`` still equal to ``iqc:reviewRating``); a differing rating set
elsewhere is kept unless :attr:`Policy.overwrite_ratings` (a conflict, counted). A rating written from a
decision records no ``iqc:rating`` but ``iqc:ratingSource`` = ``review`` (and ``reviewRating``,
``decision``, ``suggestedRating``), so :mod:`iqc_dagster.core.ratings` reads it as the user's: ``iqc
tune`` learns it even when it equals iqc's suggestion.

**Merging** (:func:`merge`): the sidecar is parsed and re-serialised by exiv2 (libexiv2 with Adobe's
XMP toolkit): every other property, namespace, structure and history entry keeps its value exactly
(white space and attribute order may change). A sidecar that does not parse is never touched. Nothing
is written when nothing changed. Writes are atomic (:func:`iqc_dagster.core.files.write_atomic`).

**Sidecar names** (:func:`sidecar_paths`): ``photo.jpg.xmp`` (darktable, digiKam's default, Immich) or
``photo.xmp`` (Lightroom, Capture One); both are read, whichever exists is edited (``photo.jpg.xmp``
first), a new one gets the chosen style.

No Dagster import here.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from iqc_dagster.core import brackets, names, ratings, raw, reasons
from iqc_dagster.core.reasons import finite  # a finite number from a row, else None
from iqc_dagster.core.files import write_atomic

IQC_NS = ratings.IQC_NS  # "http://ns.iqc.invalid/xmp/1.0/" (.invalid: a name that never resolves)
IQC_PREFIX = "iqc"
#: Format version of what iqc writes into its namespace.
IQC_XMP_VERSION = "1"
KEYWORD_ROOT = "iqc"
CLASSES = ("pick", "keep", "duplicate", "reject")
STYLES = ("ext", "base")
#: XMP colour label names as Lightroom, darktable and digiKam read them.
LABEL_COLOURS = ("Red", "Yellow", "Green", "Blue", "Purple")
#: A sidecar larger than this is not one we edit (ratings.MAX_XMP_BYTES reads no larger).
MAX_SIDECAR_BYTES = 2 << 20

_lock = raw._exiv2_lock  # libexiv2's namespace registry and XMP toolkit are process-global: one lock


class XmpError(ValueError):
    """A sidecar that cannot be used, or a bad policy; ``str(exc)`` is a one-line reason."""


@dataclass(frozen=True)
class Policy:
    """How a ranked photo becomes stars, a colour label and keywords (documented in docs/workflow.md)."""

    top_share: float = 0.2  # best-in-group photos ranked in this top fraction of the album are picks
    ratings: Mapping[str, int] = field(default_factory=lambda: {"pick": 4, "keep": 3, "duplicate": 2, "reject": 1})
    labels: Mapping[str, str] = field(default_factory=lambda: {"pick": "Green", "keep": "", "duplicate": "Yellow",
                                                               "reject": "Red"})
    reject_flag: bool = False  # write xmp:Rating -1 ("rejected") for rejects
    overwrite_ratings: bool = False  # replace the user's own rating and label

    def __post_init__(self):
        if not (0.0 <= float(self.top_share) <= 1.0):
            raise XmpError(f"top share {self.top_share} is not between 0 and 1")
        for c in CLASSES:
            if c not in self.ratings:
                raise XmpError(f"no rating for class {c!r}")
            r = int(self.ratings[c])
            if r not in range(-1, 6):
                raise XmpError(f"rating {r} for {c!r} is not -1..5")
            lab = self.labels.get(c, "")
            if lab and lab not in LABEL_COLOURS:
                raise XmpError(f"label {lab!r} for {c!r} is not one of {', '.join(LABEL_COLOURS)} (or empty)")

    def rating_of(self, cls: str) -> int:
        return -1 if cls == "reject" and self.reject_flag else int(self.ratings[cls])


# --- from a ranked row to values -----------------------------------------------------------------------

def _s(row: Mapping, key: str) -> str:
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    try:
        return bool(v) and not (isinstance(v, float) and math.isnan(v))
    except (TypeError, ValueError):
        return False


#: Below these calibrated scores a photo is a clear technical reject (unless part of a bracket/stack).
REJECT_SHARPNESS = reasons.BLURRY
REJECT_EXPOSURE = 0.1
SEQUENCE_KINDS = brackets.KINDS


def technical_faults(row: Mapping) -> list[str]:
    """Keyword leaves for what is technically wrong with a photo (``blurry``, ``noisy``, ...)."""
    out = []
    if _s(row, "no_detail"):
        out.append("blank")
    sharp = finite(row, "sharpness_norm")
    if sharp is not None and sharp <= REJECT_SHARPNESS:
        out.append("blurry")
    noise = finite(row, "noise_norm")
    if noise is not None and noise <= reasons.SCORE_WORDS["noise_norm"].low_at:
        out.append("noisy")
    hi = finite(row, "clipped_highlights")
    if hi is not None and hi >= reasons.CLIPPED_HIGHLIGHTS:
        out.append("clipped-highlights")
    med, exposure = finite(row, "median_luma"), finite(row, "exposure_norm")
    if med is not None and med <= reasons.DARK_MEDIAN and (exposure is None or exposure < reasons.KEY_TRUSTED):
        out.append("dark")
    return out


def classify(row: Mapping, n_photos: int, policy: Policy) -> str:
    """``pick``, ``keep``, ``duplicate`` or ``reject`` for one ranked row (see the module docstring)."""
    kind = _s(row, "group_kind")
    in_sequence = kind in SEQUENCE_KINDS
    sharp, exposure = finite(row, "sharpness_norm"), finite(row, "exposure_norm")
    reject = bool(_s(row, "no_detail")) or (sharp is not None and sharp <= REJECT_SHARPNESS) or (
        exposure is not None and exposure <= REJECT_EXPOSURE)
    if reject and not in_sequence:
        return "reject"
    size = finite(row, "group_size") or 1
    best = _truthy(row.get("is_best_in_group")) or size <= 1
    if not best and not in_sequence:
        return "duplicate"
    rank = finite(row, "rank")
    top = max(1, math.ceil(policy.top_share * n_photos)) if policy.top_share > 0 else 0
    if best and rank is not None and rank <= top:
        return "pick"
    return "keep"


def keyword_leaves(row: Mapping, cls: str) -> list[str]:
    """The ``iqc/`` keyword leaves of one row: its class, its group role, its technical faults."""
    out = [cls]
    kind = _s(row, "group_kind")
    size = finite(row, "group_size") or 1
    if size > 1:
        if kind in SEQUENCE_KINDS:
            out.append(kind.replace("_", "-"))
        elif _truthy(row.get("is_best_in_group")):
            out.append("best-in-group")
        else:
            out.append("burst" if kind == "burst" else "duplicate")
    out += [f for f in technical_faults(row) if f not in out]
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Entry:
    """What iqc wants in one photo's sidecar."""

    file: str  # album-relative key of the photo
    cls: str
    rating: int
    label: str
    keywords: tuple[str, ...]  # leaves, without the iqc/ root
    record: Mapping[str, str]  # iqc: namespace properties (besides rating/label)
    decision: str | None = None  # the user's review decision ("pick", "reject", "stars"): ``rating`` is it
    suggested: int | None = None  # with a decision: the rating iqc itself would have written (its class's)


def plan(ranked: Iterable[Mapping], policy: Policy, album: str = "",
         decisions: Mapping[str, Decision] | None = None) -> list[Entry]:
    """One :class:`Entry` per ranked row, and one per RAW + JPEG companion (``companions`` column, the
    same values). ``decisions`` (album-relative file key -> :class:`Decision`, from
    :func:`read_decisions`): the user's review decisions, which become the entries' ratings."""
    decisions = decisions or {}
    rows = list(ranked)
    n = len(rows)
    out = []
    for row in rows:
        cls = classify(row, n, policy)
        record = {
            "finalScore": _fmt(finite(row, "final_score")), "rank": _fmt(finite(row, "rank")), "rankOf": str(n),
            "album": album, "class": cls, "groupId": _fmt(finite(row, "group_id")),
            "groupSize": _fmt(finite(row, "group_size")), "groupKind": _s(row, "group_kind"),
            "bestInGroup": "True" if _truthy(row.get("is_best_in_group")) else "False",
            "duplicateOf": _s(row, "duplicate_of"), "reasons": _s(row, "reasons"), "weightsId": _s(row, "weights_id"),
            "version": IQC_XMP_VERSION,
        }
        record = {k: v for k, v in record.items() if v != ""}
        files = [_s(row, "file")] + [c for c in _s(row, "companions").split(";") if c]
        decision = next((decisions[f] for f in files if f in decisions), None)
        for f in files:
            rating, suggested = policy.rating_of(cls), None
            if decision is not None:
                rating, suggested = decision.rating(policy), rating
            out.append(Entry(file=f, cls=cls, rating=rating, label=policy.labels.get(cls, "") or "",
                             keywords=tuple(keyword_leaves(row, cls)), record=dict(record),
                             decision=decision.kind if decision else None, suggested=suggested))
    return out


# --- the user's review decisions (a labels CSV) ---------------------------------------------------------

#: ``iqc:ratingSource`` of a ``xmp:Rating`` written from the user's review decisions (``--labels``).
REVIEW_SOURCE = "review"


@dataclass(frozen=True)
class Decision:
    """One photo's decision from the review page's labels CSV: ``pick``, ``reject`` or ``stars``."""

    kind: str
    stars: int | None = None  # kind "stars": 1..5

    def rating(self, policy: Policy) -> int:
        """The ``xmp:Rating`` it becomes: stars as given, a pick or a reject through the policy's mapping
        (pick 4, reject 1 or -1 with ``reject_flag``)."""
        return int(self.stars) if self.kind == "stars" else policy.rating_of(self.kind)


@dataclass
class Decisions:
    """A labels CSV matched to one album's ranked photos (:func:`read_decisions`)."""

    by_file: dict[str, Decision] = field(default_factory=dict)  # the ranked row's ``file`` key -> decision
    n_rows: int = 0  # rows with a file name
    n_matched: int = 0  # ranked photos with a decision
    n_undecided: int = 0  # ranked photos named with "no decision" (pick 0 / rating 0)
    unmatched: list[str] = field(default_factory=list)  # names of rows that match no ranked photo


def decision_of(row: Mapping, where: str) -> Decision | None:
    """The decision of one :func:`ratings.read_labels_csv` row; None for "no decision" (0). A rating
    that is not a star rating raises :class:`ratings.LabelsError` (``where`` names the file and line)."""
    value = float(row["rating"])
    if value == 0:
        return None
    if row.get("kind") == "pick":
        return Decision("pick") if value > 0 else Decision("reject")
    if value == -1:
        return Decision("reject")
    if value.is_integer() and 1 <= value <= 5:
        return Decision("stars", int(value))
    raise ratings.LabelsError(f"{where}: rating {_fmt(value)} for {names.display(row['file'])} is not a star "
                              f"rating (1-5, -1 for a reject, 0 or empty for no decision)")


def read_decisions(labels_csv: str | os.PathLike, ranked: Iterable[Mapping], *, album: str,
                   album_dir: str | os.PathLike) -> Decisions:
    """The user's decisions in a labels CSV (the review page's ``file,rating`` or ``file,pick`` export),
    matched to the ranked photos of ``album`` the way :func:`ratings.match_labels` matches them for
    ``iqc tune --labels`` (absolute path, ``album/photo.jpg`` or ``photo.jpg``; a RAW + JPEG companion
    names its shot). The last row for a photo wins.

    Raises :class:`ratings.LabelsError` (one line) for a CSV that cannot be read, a rating that is not a
    star rating, or rows of which none names a photo of the album (the wrong album's CSV)."""
    rows = ratings.read_labels_csv(labels_csv)
    files: dict[str, list[str]] = {}  # ranked file -> it and its companions
    for r in ranked:
        main = _s(r, "file")
        if main:
            files[main] = [main] + [c for c in _s(r, "companions").split(";") if c]
    owner = {main: main for main in files}  # a file named in a labels row -> the ranked row it belongs to
    for main, fs in files.items():
        for companion in fs[1:]:
            owner.setdefault(companion, main)
    find = ratings.label_matcher([(album, f) for f in owner], Path(album_dir).parent,
                                 album_dirs={album: album_dir})
    out = Decisions(n_rows=len(rows))
    undecided: set[str] = set()
    for row in rows:
        key = find(row["file"], row.get("album"))
        if key is None:
            out.unmatched.append(str(row["file"]))
            continue
        decision = decision_of(row, f"{labels_csv}:{row.get('line', '?')}")
        main = owner[key[1]]
        if decision is None:
            out.by_file.pop(main, None)
            undecided.add(main)
        else:
            out.by_file[main] = decision
            undecided.discard(main)
    out.n_matched, out.n_undecided = len(out.by_file), len(undecided)
    if rows and len(out.unmatched) == len(rows):
        raise ratings.LabelsError(
            f"labels CSV {labels_csv}: none of its {len(rows)} row(s) names a ranked photo of album "
            f"{names.display(album)} (e.g. {names.display(rows[0]['file'])}); 'file' must be the photo's "
            f"absolute path, {names.display(album)}/photo.jpg or photo.jpg")
    return out


def unmatched_note(labels_csv, decisions: Decisions, album: str, shown: int = 3) -> str | None:
    """One line for the rows of a labels CSV that matched no ranked photo (None when all matched)."""
    n = len(decisions.unmatched)
    if not n:
        return None
    eg = ", ".join(names.display(x) for x in decisions.unmatched[:shown]) + (", ..." if n > shown else "")
    return (f"labels CSV {labels_csv}: {n} of {decisions.n_rows} row(s) matched no ranked photo of album "
            f"{names.display(album)} and were not used (e.g. {eg})")


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:.4f}"


# --- sidecar files --------------------------------------------------------------------------------------

def sidecar_paths(photo: str | os.PathLike) -> tuple[Path, Path]:
    """``(photo.jpg.xmp, photo.xmp)`` beside ``photo``."""
    p = Path(photo)
    return p.with_name(p.name + ".xmp"), p.with_name(p.stem + ".xmp")


def _existing(photo: Path) -> Path | None:
    """The sidecar of ``photo`` that exists, in :func:`ratings.sidecar_paths`' order (the one ratings read)."""
    return next((c for c in ratings.sidecar_paths(photo) if c.is_file()), None)


def sidecar_target(photo: Path, style: str = "ext", dest_photo: Path | None = None) -> tuple[Path | None, Path]:
    """``(sidecar to read or None, sidecar to write)`` for ``photo``.

    Beside the photo: the existing sidecar (``photo.jpg.xmp``, else ``photo.xmp``, either case of
    ``.xmp``) is read and edited; without one, ``style`` names the new file. With ``dest_photo`` (where
    the photo would be in the ``--dest`` mirror) the sidecar is written there: an existing one there is
    the base, else the one beside the photo (so the user's ratings carry over); the album is not written."""
    if style not in STYLES:
        raise XmpError(f"sidecar style {style!r} is not one of {', '.join(STYLES)}")
    ext, base = sidecar_paths(photo)
    here = _existing(photo)
    if dest_photo is None:
        return here, here or (ext if style == "ext" else base)
    dext, dbase = sidecar_paths(dest_photo)
    there = _existing(dest_photo)
    if there is not None:
        return there, there
    target = dext if (here == ext or (here is None and style == "ext")) else dbase
    return here, target


# --- exiv2 ----------------------------------------------------------------------------------------------

def _exiv2():
    import exiv2

    exiv2.LogMsg.setLevel(exiv2.LogMsg.Level.mute)
    try:
        exiv2.XmpProperties.ns(IQC_PREFIX)
    except exiv2.Exiv2Error:
        exiv2.XmpProperties.registerNs(IQC_NS, IQC_PREFIX)
    return exiv2


def _parse(exiv2, data: bytes | None):
    """XmpData of a sidecar's bytes (empty for None); XmpError when it is not XMP."""
    if not data:
        return exiv2.XmpData(), None
    if len(data) > MAX_SIDECAR_BYTES:
        raise XmpError(f"sidecar larger than {MAX_SIDECAR_BYTES >> 20} MiB: not edited")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XmpError("sidecar has a DTD: not edited")
    try:
        image = exiv2.ImageFactory.open(data)
        if image.mimeType() != "application/rdf+xml":
            raise XmpError("not an XMP sidecar: not edited")
        image.readMetadata()
    except exiv2.Exiv2Error as exc:
        raise XmpError(f"sidecar is not valid XMP ({exc.args[-1] if exc.args else exc}): not edited") from None
    return image.xmpData(), image  # the image owns the data: keep it alive while editing


def _get(xd, key: str) -> str | None:
    import exiv2

    it = xd.findKey(exiv2.XmpKey(key))
    if it == xd.end():
        return None
    return it.toString()


def _array(xd, key: str) -> list[str]:
    import exiv2

    it = xd.findKey(exiv2.XmpKey(key))
    if it == xd.end():
        return []
    v = it.getValue()
    try:
        return [v.toString(i) for i in range(v.count())]
    except Exception:
        return [it.toString()]


def _set_array(exiv2, xd, key: str, items: list[str], kind) -> None:
    it = xd.findKey(exiv2.XmpKey(key))
    if it != xd.end():
        xd.erase(it)
    if items:
        v = exiv2.Value.create(kind)
        for item in items:
            v.read(item)
        xd.add(exiv2.XmpKey(key), v)


def _set(xd, key: str, value: str | None) -> None:
    import exiv2

    it = xd.findKey(exiv2.XmpKey(key))
    if value is None:
        if it != xd.end():
            xd.erase(it)
        return
    xd[key] = value


def _is_ours(keyword: str) -> bool:
    return keyword == KEYWORD_ROOT or keyword.startswith((KEYWORD_ROOT + "/", KEYWORD_ROOT + "|"))


def _rating_value(text: str | None) -> float | None:
    try:
        v = float(text) if text is not None else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None


@dataclass
class MergeResult:
    data: bytes  # the new sidecar
    changes: list[str]  # what changed, for logs and --dry-run ("rating 4", "kept your rating 5", ...)
    changed: bool
    decision_applied: bool = False  # xmp:Rating is the entry's review decision
    conflict: bool = False  # the review decision met a differing rating the user set elsewhere


def merge(existing: bytes | None, entry: Entry, policy: Policy, *, now: dt.datetime | None = None) -> MergeResult:
    """The sidecar ``existing`` (None: none yet) with ``entry``'s values merged in (module docstring)."""
    with _lock:
        exiv2 = _exiv2()
        xd, _image = _parse(exiv2, existing)
        before = _snapshot(xd)
        notes: list[str] = []
        iq = f"Xmp.{IQC_PREFIX}."

        # rating: the user's own rating (not 0 and not the one iqc recorded) wins unless overwriting
        cur, rec = _get(xd, "Xmp.xmp.Rating"), _get(xd, iq + "rating")
        cur_v, rec_v = _rating_value(cur), _rating_value(rec)
        rev_v = _rating_value(_get(xd, iq + "reviewRating"))
        users = cur_v is not None and cur_v != 0 and (rec_v is None or cur_v != rec_v)
        applied = conflict = False
        if entry.decision is not None:
            # the user's review decision: it replaces iqc's suggestion, an unrated photo and an earlier
            # review decision iqc wrote (xmp:Rating still iqc:reviewRating); a differing rating set
            # elsewhere is a conflict, kept unless overwriting
            older = users and not (rev_v is not None and cur_v == rev_v) and cur_v != entry.rating
            conflict = older
            what = "your review decision: " + (f"{entry.rating} star(s)" if entry.decision == "stars"
                                               else entry.decision)
            if older and not policy.overwrite_ratings:
                notes.append(f"kept your rating {cur} ({what} would give {entry.rating}; "
                             f"--overwrite-ratings applies it)")
            else:
                applied = True
                _set(xd, "Xmp.xmp.Rating", str(entry.rating))
                _set(xd, iq + "rating", None)  # no iqc suggestion recorded: iqc tune learns this rating
                _set(xd, iq + "ratingSource", REVIEW_SOURCE)
                _set(xd, iq + "reviewRating", str(entry.rating))
                _set(xd, iq + "decision", entry.decision)
                _set(xd, iq + "suggestedRating", None if entry.suggested is None else str(entry.suggested))
                if cur != str(entry.rating):
                    notes.append(f"rating {cur or 'none'} -> {entry.rating} ({what}"
                                 f"{', replacing your rating' if older else ''})")
        elif users and not policy.overwrite_ratings:
            notes.append(f"kept your rating {cur}")
        else:
            _set(xd, "Xmp.xmp.Rating", str(entry.rating))
            _set(xd, iq + "rating", str(entry.rating))
            for k in _REVIEW_KEYS:  # iqc's own suggestion now: no review decision behind it
                _set(xd, iq + k, None)
            if cur != str(entry.rating):
                notes.append(f"rating {cur or 'none'} -> {entry.rating}")

        cur_l, rec_l = _get(xd, "Xmp.xmp.Label"), _get(xd, iq + "label")
        users_l = bool(cur_l) and cur_l != (rec_l or "")
        if users_l and not policy.overwrite_ratings:
            notes.append(f"kept your label {cur_l}")
        else:
            _set(xd, "Xmp.xmp.Label", entry.label or None)
            _set(xd, iq + "label", entry.label or None)
            if (cur_l or "") != entry.label:
                notes.append(f"label {cur_l or 'none'} -> {entry.label or 'none'}")

        # keywords: earlier iqc/ keywords replaced, the user's kept (in their order)
        leaves = list(entry.keywords)
        for key, sep, kind in (("Xmp.dc.subject", "/", exiv2.TypeId.xmpBag),
                               ("Xmp.lr.hierarchicalSubject", "|", exiv2.TypeId.xmpBag),
                               ("Xmp.digiKam.TagsList", "/", exiv2.TypeId.xmpSeq)):
            old = _array(xd, key)
            new = [k for k in old if not _is_ours(k)] + [f"{KEYWORD_ROOT}{sep}{leaf}" for leaf in leaves]
            if new != old:
                _set_array(exiv2, xd, key, new, kind)

        for k, v in entry.record.items():
            _set(xd, iq + k, v)
        changed = _snapshot(xd) != before
        if changed:
            _set(xd, iq + "exportedAt", (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0).isoformat())
            if existing is None:
                notes.insert(0, "new sidecar")
        flags = exiv2.XmpParser.XmpFormatFlags.useCompactFormat | exiv2.XmpParser.XmpFormatFlags.omitPacketWrapper
        rc, text = exiv2.XmpParser.encode(xd, flags)
        if rc != 0:
            raise XmpError(f"XMP toolkit could not write the sidecar (error {rc})")
    data = ('<?xml version="1.0" encoding="UTF-8"?>\n' + text.rstrip() + "\n").encode("utf-8")
    if changed and not notes:
        notes.append("iqc values updated")
    return MergeResult(data=data, changes=notes, changed=changed, decision_applied=applied, conflict=conflict)


#: The ``iqc:`` properties that say a rating came from the user's review decisions.
_REVIEW_KEYS = ("ratingSource", "reviewRating", "decision", "suggestedRating")


def _snapshot(xd) -> list[tuple[str, str]]:
    """Every property as (key, value), iqc's export time left out: what 'changed' compares."""
    skip = f"Xmp.{IQC_PREFIX}.exportedAt"
    return [(d.key(), d.toString()) for d in xd if d.key() != skip]


# --- export ---------------------------------------------------------------------------------------------

@dataclass
class ExportSummary:
    written: list[str] = field(default_factory=list)  # sidecar paths (display form)
    unchanged: list[str] = field(default_factory=list)
    kept_user_ratings: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (photo key, reason)
    by_class: dict[str, int] = field(default_factory=dict)
    decisions_applied: int = 0  # sidecars whose xmp:Rating is the user's review decision
    decision_conflicts: int = 0  # sidecars where a decision met a differing rating set elsewhere
    conflicts_kept: int = 0  # ... of which the sidecar's rating was kept (no --overwrite-ratings)


def export(ranked: Iterable[Mapping], album_dir: str | os.PathLike, policy: Policy, *, album: str = "",
           style: str = "ext", dest: str | os.PathLike | None = None, dry_run: bool = False,
           log: Callable[[str], None] | None = None, now: dt.datetime | None = None,
           decisions: Mapping[str, Decision] | None = None) -> ExportSummary:
    """Write (or with ``dry_run`` only describe) the sidecars of every ranked photo of one album.

    ``album_dir``: the album folder; ``dest``: a folder to mirror the sidecars into instead (the
    album-relative layout kept); ``decisions``: the user's review decisions (:func:`read_decisions`),
    written as the ratings of their photos. One sidecar that cannot be edited is reported and the
    others go on.
    """
    folder = Path(album_dir)
    dest_dir = Path(dest) if dest is not None else None
    log = log or (lambda _m: None)
    summary = ExportSummary()
    done: set[Path] = set()
    for entry in plan(ranked, policy, album, decisions):
        summary.by_class[entry.cls] = summary.by_class.get(entry.cls, 0) + 1
        real = names.from_key(entry.file)
        photo = folder / real
        if not os.path.lexists(photo):  # deleted or moved since the ranking: no sidecar for nothing
            summary.failed.append((entry.file, "photo no longer there (re-rank the album)"))
            log(f"{names.display(entry.file)}: photo no longer there (re-rank the album)")
            continue
        try:
            read_from, target = sidecar_target(photo, style, dest_dir / real if dest_dir is not None else None)
            if target in done:  # photo.xmp shared by IMG_1.CR2 and IMG_1.JPG: one write
                continue
            done.add(target)
            existing = None
            if read_from is not None:
                with open(read_from, "rb") as f:
                    existing = f.read(MAX_SIDECAR_BYTES + 1)
            result = merge(existing, entry, policy, now=now)
        except (XmpError, OSError) as exc:
            reason = str(exc) if isinstance(exc, XmpError) else f"cannot read: {exc.strerror or exc}"
            summary.failed.append((entry.file, reason))
            log(f"{names.display(entry.file)}: {reason}")
            continue
        if any(n.startswith("kept your rating") for n in result.changes):
            summary.kept_user_ratings += 1
        summary.decisions_applied += result.decision_applied
        summary.decision_conflicts += result.conflict
        summary.conflicts_kept += result.conflict and not result.decision_applied
        shown = names.display(names.to_key(str(target)))
        if not result.changed and read_from == target:
            summary.unchanged.append(shown)
            continue
        verb = "would write" if dry_run else "wrote"
        log(f"{verb} {shown}: {entry.cls}; " + "; ".join(result.changes))
        if not dry_run:
            try:
                write_atomic(target, result.data)
            except OSError as exc:
                summary.failed.append((entry.file, f"cannot write {shown}: {exc.strerror or exc}"))
                continue
        summary.written.append(shown)
    return summary


def read_ranked_csv(path: str | os.PathLike) -> list[dict]:
    """The ranked CSV as rows of strings (empty for missing values: no 'NA.jpg' turned into NaN)."""
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")


def export_album(ranked: Iterable[Mapping], album_dir: str | os.PathLike, policy: Policy, *, album: str,
                 labels: str | os.PathLike | None = None, warn: Callable[[str], None] | None = None,
                 **options) -> tuple[ExportSummary, Decisions | None]:
    """:func:`export` of one album, with the user's review decisions read from ``labels`` (a labels CSV)
    first: ``(summary, decisions)``. Rows of the CSV that match no photo are reported through ``warn``;
    a CSV that cannot be used raises :class:`ratings.LabelsError` before anything is written.
    ``options``: the other keywords of :func:`export`."""
    rows = list(ranked)
    decisions = None
    if labels is not None:
        labels = Path(labels).expanduser()
        decisions = read_decisions(labels, rows, album=album, album_dir=album_dir)
        note = unmatched_note(names.display(labels), decisions, album)
        if note and warn is not None:
            warn(note)
    summary = export(rows, album_dir, policy, album=album,
                     decisions=decisions.by_file if decisions is not None else None, **options)
    return summary, decisions


__all__ = ["CLASSES", "Decision", "Decisions", "Entry", "ExportSummary", "IQC_NS", "LABEL_COLOURS", "MergeResult", "Policy", "STYLES",
           "REVIEW_SOURCE", "XmpError", "classify", "decision_of", "export", "export_album", "keyword_leaves", "merge", "plan", "read_decisions", "read_ranked_csv",
           "sidecar_paths", "sidecar_target", "technical_faults", "unmatched_note"]

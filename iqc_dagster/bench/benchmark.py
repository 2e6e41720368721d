"""Ranking-quality benchmark (v2): do the scores put the better photo first, at every pixel size?

Every image is a **file on disk** ranked through the code ``iqc rank`` runs: the album inventory
(:func:`iqc_dagster.core.inventory.scan_album`), the one decode per photo and the registered features
(:func:`iqc_dagster.core.analysis.analyze`), calibrated scores (:func:`iqc_dagster.core.ranking.normalized_rows`)
and fusion into ``final_score`` (:func:`iqc_dagster.core.ranking.build_ranking`, default weights, no
CLIP, whose weight is redistributed as in production without a model). Nothing is built in memory at the
working size: the decoder, the file format and every reduction users' photos go through are exercised.

**The set.** Each reference photograph is resized to every benchmark size (long side 640 ... 6000 px) it
can reach without being enlarged more than 2x (area reduction down, Lanczos up; an enlarged reference is
softer than a camera file and is flagged ``upscaled``), in landscape or portrait (alternating; half of the
portraits are stored landscape with an EXIF orientation, as phones do). At that size it gets graded
distortions (:data:`iqc_dagster.bench.degrade.DISTORTIONS`, applied at the source size), a bokeh and a soft
copy, and two harmless copies that a user would not call worse (a quality-88 re-save and a copy downscaled
to 2/3). Everything is saved as a quality-95 JPEG (4:2:0, as cameras do) except the JPEG distortions and
the re-save, which are saved at their own quality. One album per size: all its references and copies
compete in it.

**Metrics** (each for the product's ``final_score`` and for the seed method as a baseline; ties count as
wrong):

* **pairwise accuracy**: share of (reference, distorted copy) pairs where the reference scores higher;
  overall and per distortion type;
* **monotonicity**: share of (milder, harsher) pairs of the same distortion where the milder copy scores
  higher (levels 1>2, 2>3, 1>3);
* **bokeh**: share of references whose bokeh copy scores at least as high as the uniformly soft copy;
* **harmless**: share of harmless copies scoring no more than ``HARMLESS_TOLERANCE`` below their reference;
* **precision@K**: within one size's album (references and graded copies), K = number of references:
  share of the top K that are clean references (the mean over sizes when several are pooled);
* **aligned precision@K** (a diagnostic, not a target): the same after shifting each reference's copies
  with it so that every reference scores the album's median reference score. It keeps each copy's gap to
  its own reference and removes the spread between scenes, so it is the precision@K that perfect
  calibration across scenes would reach with the same within-scene orderings: its gap to precision@K is
  what the spread between scenes costs, its gap to 1 what copies scoring at or above their reference cost;
* **the review page's view**: the album grouped as the product groups it (near-duplicate and burst
  groups from the perceptual hashes :func:`rank_folder` records, :func:`dedup.group_photos`), each group
  shown by its best pick: ``copies_grouped`` (share of graded copies in their original's group),
  ``best_pick_original`` (share of originals that are their group's best pick) and
  ``best_pick_precision_at_k`` (share of originals among the first K best picks in score order, what
  the page opens on).

The *seed* baseline is the method the project started from: Laplacian variance, mean brightness and RMS
contrast, min-max normalised over the whole set, weights .35/.20/.10; it is computed from the raw figures
the product records for each file (``laplacian_var`` at 512 px, ``mean_luma``, ``rms_contrast`` at 64 px).

References are real photographs shipped in packages: scikit-image, scikit-learn and matplotlib (PyPI, dev
extra; at most 1024 px) and Debian's ``lomiri-wallpapers-16.04`` / ``-20.04`` (2000-6000 px camera
photos, CC-BY / CC-BY-SA / CC0; see data/README.md). They were split once, before any calibration, into
``calibration`` (the only ones looked at while choosing the scores' constants) and ``held_out``.

Pure Python: no Dagster import; the asset in ``iqc_dagster.defs.benchmark``, ``iqc benchmark`` and the
weight tuning call it.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from iqc_dagster.bench import degrade
from iqc_dagster.core import analysis, fusion, inventory, ranking
from iqc_dagster.core import names as name_keys
from iqc_dagster.core import features as feat
from iqc_dagster.core.files import write_atomic

#: Benchmark format version (changes when the set, the files or the metrics change).
BENCHMARK_VERSION = "rq2"

#: Long sides, in pixels, of the benchmark's albums: small images, web exports, phone and camera files.
SIZES: tuple[int, ...] = (640, 1024, 1600, 2048, 3000, 4000, 6000)
#: A reference is used at a size only if it needs at most this much enlargement to reach it.
MAX_UPSCALE = 2.0
#: Quality of every saved file (a camera JPEG), and of the harmless re-save.
SAVE_QUALITY = 95
RESAVE_QUALITY = 88
DOWNSCALE = 2 / 3
#: A harmless copy may score at most this much below its reference.
HARMLESS_TOLERANCE = 0.03
HARMLESS = ("resave", "downscaled")
UNGRADED = ("bokeh", "soft") + HARMLESS

#: Where Debian's lomiri-wallpapers packages install their photographs.
LOMIRI_DIR = Path("/usr/share/backgrounds")
LOMIRI_PACKAGES = "lomiri-wallpapers-16.04 lomiri-wallpapers-20.04"


class BenchmarkUnavailable(RuntimeError):
    """A reference photo cannot be loaded (its package is not installed). ``str(exc)`` is one line."""


@dataclass(frozen=True)
class Reference:
    name: str
    package: str  # the package that ships the photo
    split: str  # "calibration", "held_out" or "extra" (not in the default set)
    description: str
    file: str = ""  # file name, for references that are files of a Debian package


def _ref(name, package, split, description, file=""):
    return name, Reference(name, package, split, description, file)


_L16, _L20 = "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04"

#: Every reference the benchmark knows. The split was fixed before the scores were calibrated.
REFERENCES: dict[str, Reference] = dict([
    # calibration: the only photos looked at while choosing constants
    _ref("astronaut", "scikit-image", "calibration", "portrait of Eileen Collins (NASA), colour"),
    _ref("camera", "scikit-image", "calibration", "cameraman on a lawn, grey"),
    _ref("chelsea", "scikit-image", "calibration", "a cat, colour"),
    _ref("coffee", "scikit-image", "calibration", "cup of coffee on a table, colour"),
    _ref("rocket", "scikit-image", "calibration", "rocket on the launch pad, colour, dark"),
    _ref("brick", "scikit-image", "calibration", "brick wall texture, grey"),
    _ref("grass", "scikit-image", "calibration", "grass texture, grey"),
    _ref("bridge", _L16, "calibration", "cable bridge against the sky, 4352 px", "Bridge_by_Sander_Klootwijk.jpg"),
    _ref("dragonfly", _L16, "calibration", "leaves against a blue sky, 4224 px", "Dragonfly_by_Bolly.jpg"),
    _ref("fig", _L16, "calibration", "a fig on a red plate, 2572 px", "Picture_0B_by_freespace.jpg"),
    _ref("wine", _L16, "calibration", "living room with a drum, portrait, 3837 px", "Wine_by_Jakkub_Mede.jpg"),
    _ref("aitzgorri", _L16, "calibration", "mountain and autumn forest, 3088 px",
         "aitzgorri_by_Aitzol_Berasategi.jpg"),
    _ref("life", _L16, "calibration", "a creek in a forest, 3088 px", "life_by_Aitzol_Berasategi.jpg"),
    _ref("kleiber", _L20, "calibration", "a nuthatch on a tree trunk, bokeh, 6028 px",
         "Kleiber_by_Lukas_Baubkus.jpg"),
    # held out: never used to choose anything; reported separately
    _ref("motorcycle", "scikit-image", "held_out", "motorcycle (left view of the stereo pair), colour"),
    _ref("coins", "scikit-image", "held_out", "Greek coins on a dark ground, grey"),
    _ref("moon", "scikit-image", "held_out", "lunar surface, grey, low contrast"),
    _ref("gravel", "scikit-image", "held_out", "gravel texture, grey"),
    _ref("text", "scikit-image", "held_out", "handwriting on a board, grey"),
    _ref("china", "scikit-learn", "held_out", "Chinese temple, colour"),
    _ref("flower", "scikit-learn", "held_out", "flower close-up, colour"),
    _ref("grace_hopper", "matplotlib", "held_out", "portrait of Grace Hopper, colour"),
    _ref("brushes", _L16, "held_out", "paint brushes, 1365 px", "Picture_1A_by_freespace.jpg"),
    _ref("pattern", _L16, "held_out", "a textured surface, 2880 px", "analogpattern_by_Peter_Nerlich.jpg"),
    _ref("lamps", _L16, "held_out", "a toy bird under lamps, 2880 px", "free_by_Peter_Nerlich.jpg"),
    _ref("dogs", _L16, "held_out", "two dogs at a window, portrait, 3088 px", "friends_by_Aitzol_Berasategi.jpg"),
    _ref("clock", _L16, "held_out", "a wall clock, 2880 px", "greentock_by_Peter_Nerlich.jpg"),
    _ref("picos", _L16, "held_out", "mountains and a path, 3264 px", "picosdeeuropa_by_Aitzol_Berasategi.jpg"),
    _ref("dandelions", _L16, "held_out", "dandelions in a meadow, 5312 px",
         "seeding_by_Clements_Engelhardt.jpg"),
    _ref("sunset", _L16, "held_out", "sunset over a hill, 4272 px", "sunset_by_Aitzol_Berasategi.jpg"),
    # extra, only on request: real photos from a package that is not a dev dependency, and real images
    # that are not scene photographs
    _ref("aero", "PyWavelets", "extra", "aerial photograph, grey"),
    _ref("ascent", "PyWavelets", "extra", "people climbing stairs, grey"),
    _ref("hubble_deep_field", "scikit-image", "extra", "Hubble deep field (telescope composite)"),
    _ref("retina", "scikit-image", "extra", "fundus photograph with a black mask"),
    # the two portraits with their eyes painted shut (core.shut_eyes): the eye score's fixtures
    _ref("astronaut_eyes_shut", "scikit-image", "extra", "astronaut, eyes painted shut"),
    _ref("grace_hopper_eyes_shut", "matplotlib", "extra", "grace_hopper, eyes painted shut"),
])

DEFAULT_REFERENCES: tuple[str, ...] = tuple(n for n, r in REFERENCES.items() if r.split != "extra")
#: The references that ship in PyPI packages of the dev extra (no Debian package needed).
PACKAGE_REFERENCES: tuple[str, ...] = tuple(n for n in DEFAULT_REFERENCES if REFERENCES[n].file == "")

#: The seed method's weights (no faces, no CLIP); redistributed to sum to one.
SEED_WEIGHTS = {"sharpness": 0.35, "exposure": 0.20, "contrast": 0.10}

METHODS = ("seed", "iqc")


def _missing(package: str, exc: Exception) -> BenchmarkUnavailable:
    if package.startswith("lomiri"):
        how = f"install Debian's {LOMIRI_PACKAGES} (apt-get install {LOMIRI_PACKAGES})"
    else:
        how = "install the dev extra: pip install -e '.[dev]'"
    return BenchmarkUnavailable(
        f"the ranking benchmark needs {package} for its reference photos ({exc.__class__.__name__}: {exc}); {how}")


def _rgb8(img) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def load_reference(name: str) -> np.ndarray:
    """Reference ``name`` at its own size, as H x W x 3 uint8 RGB, upright."""
    if name not in REFERENCES:
        raise KeyError(f"unknown reference {name!r}; known: {', '.join(REFERENCES)}")
    ref = REFERENCES[name]
    pkg = ref.package
    if name.endswith("_eyes_shut"):
        from iqc_dagster.core import shut_eyes

        return shut_eyes.close_eyes(load_reference(name[:-len("_eyes_shut")]))
    try:
        if ref.file:
            with Image.open(LOMIRI_DIR / ref.file) as im:
                return _rgb8(im.convert("RGB"))
        if pkg == "PyWavelets":
            import pywt.data

            img = getattr(pywt.data, name)()
        elif pkg == "scikit-learn":
            from sklearn.datasets import load_sample_image

            img = load_sample_image(f"{name}.jpg")
        elif pkg == "matplotlib":
            import matplotlib.cbook

            with Image.open(matplotlib.cbook.get_sample_data(f"{name}.jpg")) as im:
                img = np.asarray(im.convert("RGB"))
        elif name == "motorcycle":
            import skimage.data

            img = skimage.data.stereo_motorcycle()[0]
        else:
            import skimage.data

            img = getattr(skimage.data, name)()
    except (ImportError, FileNotFoundError) as exc:
        raise _missing(pkg, exc) from None
    return _rgb8(img)


def native_long_side(name: str) -> int:
    """Long side of reference ``name`` at its own size (a package file's header only, no decode)."""
    ref = REFERENCES.get(name)
    if ref is not None and ref.file:
        try:
            with Image.open(LOMIRI_DIR / ref.file) as im:
                return max(im.size)
        except FileNotFoundError as exc:
            raise _missing(ref.package, exc) from None
    return max(load_reference(name).shape[:2])


def resize_to(img: np.ndarray, long_side: int) -> tuple[np.ndarray, bool]:
    """``img`` with its long side at ``long_side``: area reduction, or Lanczos enlargement (flagged)."""
    h, w = img.shape[:2]
    if max(h, w) == long_side:
        return img, False
    s = long_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    up = s > 1
    out = cv2.resize(img, size, interpolation=cv2.INTER_LANCZOS4 if up else cv2.INTER_AREA)
    return np.ascontiguousarray(out), up


# --------------------------------------------------------------------------------------------- the set

@dataclass(frozen=True)
class Item:
    """One benchmark file: a reference at a size, or one of its copies."""

    reference: str
    size: int
    orientation: str  # "landscape" or "portrait" (of the upright image)
    exif_rotated: bool  # stored landscape with EXIF orientation 6
    upscaled: bool
    distortion: str  # "reference", a graded distortion, or one of UNGRADED
    level: int

    @property
    def file(self) -> str:
        return f"{self.reference}__{self.distortion}{self.level or ''}.jpg"


def orientation_for(name: str, size: int, native: tuple[int, int]) -> tuple[str, bool]:
    """(orientation, stored with EXIF rotation) of reference ``name`` at ``size``, fixed and balanced:
    natively portrait photos stay portrait; the others alternate by reference and size, and every second
    portrait is stored as landscape pixels with EXIF orientation 6."""
    h, w = native
    if h > w:
        return "portrait", False
    k = zlib.crc32(f"{name}@{size}".encode())
    if k % 2 == 0:
        return "landscape", False
    return "portrait", bool((k >> 1) % 2)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # the stored image must be turned 90 degrees clockwise to be upright
    return exif.tobytes()


def _save(img: np.ndarray, path: Path, quality: int, exif: bool) -> None:
    buf = io.BytesIO()
    kw = {"exif": _exif_rotated()} if exif else {}
    Image.fromarray(img).save(buf, format="JPEG", quality=quality, **kw)
    write_atomic(path, buf.getvalue())


def _variants(img: np.ndarray, seed: int, distortions: Sequence[str], levels: Sequence[int]
              ) -> Iterable[tuple[str, int, Callable[[], np.ndarray], int]]:
    """(distortion, level, make image, JPEG quality) for a reference already at its benchmark size."""
    yield "reference", 0, (lambda: img), SAVE_QUALITY
    for d in distortions:
        fn = degrade.DISTORTIONS[d]
        for lv in levels:
            if d == "jpeg":  # the damage is the file's own quality, not a decoded copy saved again
                yield d, lv, (lambda: img), degrade.JPEG_QUALITY[lv]
            elif d in degrade.SEEDED:
                yield d, lv, (lambda fn=fn, lv=lv: fn(img, lv, seed=seed)), SAVE_QUALITY
            else:
                yield d, lv, (lambda fn=fn, lv=lv: fn(img, lv)), SAVE_QUALITY
    yield "bokeh", 0, (lambda: degrade.bokeh(img)), SAVE_QUALITY
    yield "soft", 0, (lambda: degrade.soften(img)), SAVE_QUALITY
    # harmless: the reference file decoded and saved again at a lower (still good) quality; a downscale
    yield "resave", 0, (lambda: degrade.reencode(img, SAVE_QUALITY)), RESAVE_QUALITY
    yield "downscaled", 0, (lambda: resize_to(img, max(16, round(max(img.shape[:2]) * DOWNSCALE)))[0]), \
        SAVE_QUALITY


def build_album(folder: Path, references: Sequence[str], size: int, *, distortions: Sequence[str],
                levels: Sequence[int], workers: int = 1) -> list[Item]:
    """Write the benchmark album of one size into ``folder`` (files already there are kept: a re-run with
    the same work folder measures without regenerating). Returns the items written."""
    folder.mkdir(parents=True, exist_ok=True)

    def one(name: str) -> list[Item]:
        native = load_reference(name)
        img, up = resize_to(native, size)
        orient, exif = orientation_for(name, size, native.shape[:2])
        if orient == "portrait" and img.shape[0] < img.shape[1] and not exif:
            img = np.ascontiguousarray(np.rot90(img, -1))
        seed = zlib.crc32(f"{name}@{size}".encode())  # a different, reproducible noise pattern per file
        items = []
        for d, lv, make, quality in _variants(img, seed, distortions, levels):
            item = Item(name, size, orient, exif, up, d, lv)
            path = folder / item.file
            if not path.exists():
                out = make()
                _save(out, path, quality, exif)
            items.append(item)
        return items

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return [it for group in pool.map(one, references) for it in group]


# ---------------------------------------------------------------------------------- the real path

def rank_folder(folder: Path, album: str = "benchmark", weights: fusion.Weights | None = None,
                workers: int | None = None) -> pd.DataFrame:
    """Rank the photo files of ``folder`` through the code ``iqc rank`` runs, without the database:
    inventory -> one decode per photo -> every registered feature -> calibrated scores -> fusion.
    Returns the ranked table (``file`` = path inside the folder, ``final_score``, score columns, raw
    measurements), as in the ranked CSV, plus what the duplicate groups are made from: ``phash`` (the
    perceptual hashes of the same decode) and ``captured_at``."""
    photos = inventory.scan_album(folder, album, workers=workers)
    bad = photos[photos["status"] != "ok"]
    if not bad.empty:
        raise RuntimeError(f"benchmark file(s) unreadable: {dict(zip(bad['path'], bad['reason']))}")
    names = tuple(feat.FEATURES)
    tasks = [analysis.PhotoTask(content_hash=h, path=folder / name_keys.from_key(p), rel_path=p,
                                features=names, want_hashes=True)
             for p, h in zip(photos["path"], photos["content_hash"])]
    rows, hashes = [], {}
    for batch in analysis.analyze(tasks, workers=workers):
        if batch.errors:
            raise RuntimeError(f"benchmark file(s) failed: {batch.errors}")
        rows.extend(batch.feature_rows)
        hashes.update(batch.hash_rows)
    long = pd.DataFrame(rows, columns=["content_hash", "feature", "version", "measures"])
    long = long.merge(photos[["path", "content_hash"]], on="content_hash")
    norm = ranking.normalized_rows(album, long)
    wide = norm.pivot(index=["path", "content_hash"], columns="score", values="value").reset_index()
    wide.columns.name = None
    ranked, _ = ranking.build_ranking(wide, folder, weights or fusion.Weights(dict(fusion.DEFAULT_WEIGHTS)))
    # what the duplicate_groups asset groups on: the perceptual hashes of the same decode, capture times
    by_path = photos.set_index("path")
    ranked["phash"] = [hashes.get(by_path.at[f, "content_hash"]) for f in ranked["file"]]
    ranked["captured_at"] = [by_path.at[f, "captured_at"] for f in ranked["file"]]
    return ranked


def measure_set(references: Sequence[str] | None = None, *, sizes: Sequence[int | None] = SIZES,
                distortions: Sequence[str] | None = None, levels: Sequence[int] = degrade.LEVELS,
                workers: int | None = None, work_dir: str | os.PathLike | None = None,
                progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """One row per benchmark file: reference, split, size, orientation, distortion, level, scores, raw
    measurements, ``iqc`` (final_score) and ``seed``. A size of ``None`` uses each reference at its own
    size. ``work_dir`` keeps the generated files for the next run (default: a temporary folder, removed)."""
    refs = list(references or DEFAULT_REFERENCES)
    for r in refs:
        if r not in REFERENCES:
            raise KeyError(f"unknown reference {r!r}; known: {', '.join(REFERENCES)}")
    distortions = list(distortions or degrade.DISTORTIONS)
    bad = [d for d in distortions if d not in degrade.DISTORTIONS]
    if bad:
        raise KeyError(f"unknown distortion(s) {bad}; known: {', '.join(degrade.DISTORTIONS)}")
    workers = workers or analysis.default_workers()
    natives = {r: native_long_side(r) for r in refs}  # fails early, naming the missing package
    tmp = None
    if work_dir is None:
        tmp = tempfile.mkdtemp(prefix="iqc-benchmark-")
        root = Path(tmp)
    else:
        root = Path(work_dir) / BENCHMARK_VERSION
    frames = []
    try:
        groups: dict[int, list[str]] = {}
        for r in refs:
            for s in sizes:
                size = natives[r] if s is None else s
                if size <= natives[r] * MAX_UPSCALE:
                    groups.setdefault(size, []).append(r)
        for size in sorted(groups):
            names = groups[size]
            if progress:
                progress(f"benchmark: {size} px, {len(names)} reference(s)")
            folder = root / f"{size}px"
            items = build_album(folder, names, size, distortions=distortions, levels=levels, workers=workers)
            ranked = rank_folder(folder, workers=workers).set_index("file")
            rows = []
            for it in items:
                row = {"reference": it.reference, "split": REFERENCES[it.reference].split, "size": it.size,
                       "orientation": it.orientation, "exif_rotated": it.exif_rotated, "upscaled": it.upscaled,
                       "distortion": it.distortion, "level": it.level, "file": it.file}
                row.update(ranked.loc[it.file].to_dict())
                rows.append(row)
            frames.append(pd.DataFrame(rows))
            if tmp is not None:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    frame = pd.concat(frames, ignore_index=True)
    frame["set"] = [f"{r}@{s}" for r, s in zip(frame["reference"], frame["size"])]
    frame["path"] = [f"{st}/{d}{lv or ''}" for st, d, lv in zip(frame["set"], frame["distortion"], frame["level"])]
    frame["iqc"] = frame["final_score"].astype(float)
    frame["seed"] = seed_scores(frame).to_numpy()
    return frame


def _minmax(v: pd.Series) -> pd.Series:
    lo, hi = v.min(), v.max()
    return (v - lo) / (hi - lo) if hi > lo else v * 0.0


def seed_scores(frame: pd.DataFrame) -> pd.Series:
    """The seed's final score: min-max normalisation *within the set*, then the seed weights."""
    parts = {"sharpness": _minmax(frame["laplacian_var"].astype(float)),
             "exposure": _minmax(frame["mean_luma"].astype(float)),
             "contrast": _minmax(frame["rms_contrast"].astype(float))}
    total = sum(SEED_WEIGHTS.values())
    return sum(SEED_WEIGHTS[k] / total * v for k, v in parts.items())


# ------------------------------------------------------------------------------------------ metrics

def _strict_share(pairs: list[tuple[float, float]]) -> float:
    """Share of pairs (better, worse) where better > worse; NaN for no pairs."""
    if not pairs:
        return math.nan
    return float(np.mean([a > b for a, b in pairs]))


def _precision_at_k(pool: pd.DataFrame, method: str, aligned: bool = False) -> float:
    is_ref = pool["distortion"] == "reference"
    k = int(is_ref.sum())
    if not k:
        return math.nan
    if aligned:  # every reference moved to the median reference score, its copies with it
        key = "set" if "set" in pool.columns else "reference"
        ref_score = pool.loc[is_ref].groupby(key)[method].first().dropna()
        if ref_score.empty:
            return math.nan
        pool = pool[pool[key].isin(ref_score.index)]  # a scene without a scored original has no anchor
        k = int((pool["distortion"] == "reference").sum())
        offset = float(ref_score.median()) - pool[key].map(ref_score)
        pool = pool.assign(**{method: pool[method] + offset})
    top = pool.sort_values([method, "path"], ascending=[False, True], kind="mergesort").head(k)
    return float((top["distortion"] == "reference").mean())


def _best_picks(pool: pd.DataFrame, method: str) -> dict[str, float]:
    """The review page's view of one size's album: near-duplicate groups (:func:`dedup.group_photos`,
    the product's grouping, on the ``phash`` and ``captured_at`` columns :func:`rank_folder` records)
    with ``method`` as the score, each group shown by its best pick, best picks in score order."""
    from iqc_dagster.core import dedup

    nan = {"best_pick_precision_at_k": math.nan, "best_pick_original": math.nan, "copies_grouped": math.nan}
    if "phash" not in pool.columns or not len(pool):
        return nan
    key = "set" if "set" in pool.columns else "reference"
    with_original = set(pool.loc[pool["distortion"] == "reference", key])
    pool = pool[pool[key].isin(with_original)]  # scenes with an original
    table = pd.DataFrame({"file": pool["path"].astype(str).to_numpy(), "final_score": pool[method].to_numpy(),
                          "phash": pool["phash"].to_numpy(),
                          "captured_at": pool["captured_at"].to_numpy() if "captured_at" in pool.columns
                          else None})
    for col in dedup.FACE_PICK_MARGIN:  # the best pick's face rule reads these scores
        if col in pool.columns:
            table[col] = pool[col].to_numpy()
    grouped = dedup.group_photos(table)
    is_ref = (pool["distortion"] == "reference").to_numpy()
    gid = grouped["group_id"].to_numpy()
    best = grouped["is_best_in_group"].to_numpy(dtype=bool)
    k = int(is_ref.sum())
    order = np.lexsort((table["file"].to_numpy(), -table["final_score"].to_numpy(dtype=float)))
    picks = [i for i in order if best[i]][:k]
    ref_gid = dict(zip(pool.loc[is_ref, key], gid[is_ref]))
    own = np.array([ref_gid.get(s) for s in pool[key]], dtype=object) == gid
    copies = ~is_ref
    return {"best_pick_precision_at_k": float(np.mean(is_ref[picks])) if picks else math.nan,
            "best_pick_original": float(np.mean(best[is_ref])) if k else math.nan,
            "copies_grouped": float(np.mean(own[copies])) if copies.any() else math.nan}


def compute_metrics(frame: pd.DataFrame, method: str) -> dict[str, float]:
    """All metrics for score column ``method`` on the rows of ``frame`` (one or more references/sizes)."""
    graded = [d for d in degrade.DISTORTIONS if d in set(frame["distortion"])]
    per_type: dict[str, list] = {d: [] for d in graded}
    mono: dict[str, list] = {d: [] for d in graded}
    bokeh: list = []
    harmless: list = []
    key = "set" if "set" in frame.columns else "reference"
    for _, grp in frame.groupby(key, sort=True):
        ref = grp.loc[grp["distortion"] == "reference", method]
        if ref.empty:
            continue
        r = float(ref.iloc[0])
        for d in graded:
            g = grp[grp["distortion"] == d].set_index("level")[method]
            per_type[d] += [(r, float(v)) for v in g]
            lv = sorted(g.index)
            mono[d] += [(float(g[a]), float(g[b])) for i, a in enumerate(lv) for b in lv[i + 1:]]
        b, s = grp.loc[grp["distortion"] == "bokeh", method], grp.loc[grp["distortion"] == "soft", method]
        if not b.empty and not s.empty:
            bokeh.append(float(b.iloc[0]) >= float(s.iloc[0]))
        for v in grp.loc[grp["distortion"].isin(HARMLESS), method]:
            harmless.append(float(v) >= r - HARMLESS_TOLERANCE)
    out = {"pairwise_all": _strict_share([p for v in per_type.values() for p in v])}
    out.update({f"pairwise_{d}": _strict_share(v) for d, v in per_type.items()})
    out["monotonicity_all"] = _strict_share([p for v in mono.values() for p in v])
    out.update({f"monotonicity_{d}": _strict_share(v) for d, v in mono.items()})
    out["bokeh_above_soft"] = float(np.mean(bokeh)) if bokeh else math.nan
    out["harmless_kept"] = float(np.mean(harmless)) if harmless else math.nan
    pool = frame[~frame["distortion"].isin(UNGRADED)]
    if "size" in pool.columns and pool["size"].nunique() > 1:  # one album per size: the mean over them
        for name, aligned in (("precision_at_k", False), ("precision_at_k_aligned", True)):
            vals = [_precision_at_k(g, method, aligned) for _, g in pool.groupby("size")]
            out[name] = float(np.nanmean(vals)) if vals else math.nan
        picks = [_best_picks(g, method) for _, g in pool.groupby("size")]
        for name in picks[0] if picks else ():
            vals = [p[name] for p in picks]
            out[name] = float(np.nanmean(vals)) if not all(math.isnan(v) for v in vals) else math.nan
    else:
        out["precision_at_k"] = _precision_at_k(pool, method)
        out["precision_at_k_aligned"] = _precision_at_k(pool, method, aligned=True)
        out.update(_best_picks(pool, method))
    out["n_references"] = float(frame["reference"].nunique())
    return out


SPLITS = ("all", "calibration", "held_out")
#: The metrics of the per-size table.
SIZE_METRICS = ("pairwise_all", "pairwise_gaussian_noise", "pairwise_camera_noise", "pairwise_jpeg",
                "monotonicity_all", "harmless_kept", "precision_at_k", "precision_at_k_aligned",
                "best_pick_precision_at_k", "best_pick_original", "copies_grouped")


def metrics_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows = metric; columns ``<method>:<split>`` for every method and the splits present."""
    cols = {}
    for split in SPLITS:
        sub = frame if split == "all" else frame[frame["split"] == split]
        if sub.empty or (split != "all" and sub["reference"].nunique() == frame["reference"].nunique()):
            continue
        for m in METHODS:
            cols[f"{m}:{split}"] = compute_metrics(sub, m)
    table = pd.DataFrame(cols)
    table.index.name = "metric"
    return table


def size_table(frame: pd.DataFrame, method: str = "iqc") -> pd.DataFrame:
    """Rows = (size, orientation) cells and each size as a whole; columns = :data:`SIZE_METRICS` and the
    number of references, plus the held-out pairwise accuracy."""
    if "size" not in frame.columns:
        return pd.DataFrame()
    rows = []
    for size, g in frame.groupby("size", sort=True):
        cells = [("all", g)] + [(o, go) for o, go in g.groupby("orientation", sort=True)]
        for orient, sub in cells:
            m = compute_metrics(sub, method)
            row = {"size": int(size), "orientation": orient, "n_references": int(m["n_references"])}
            row.update({k: m.get(k, math.nan) for k in SIZE_METRICS})
            held = sub[sub["split"] == "held_out"]
            row["pairwise_held_out"] = compute_metrics(held, method)["pairwise_all"] if not held.empty else math.nan
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class BenchmarkResult:
    frame: pd.DataFrame  # one row per image
    table: pd.DataFrame  # metrics x method:split
    references: list[str]
    by_size: pd.DataFrame = field(default_factory=pd.DataFrame)  # iqc metrics per size and orientation
    notes: list[str] = field(default_factory=list)

    def metric(self, name: str, method: str = "iqc", split: str = "all") -> float:
        return float(self.table.loc[name, f"{method}:{split}"])


def run_benchmark(references: Sequence[str] | None = None, *, sizes: Sequence[int | None] = SIZES,
                  distortions: Sequence[str] | None = None, levels: Sequence[int] = degrade.LEVELS,
                  workers: int | None = None, work_dir: str | os.PathLike | None = None,
                  progress: Callable[[str], None] | None = None) -> BenchmarkResult:
    """Build the set as files, rank each size's album through the real path, compute the metrics."""
    frame = measure_set(references, sizes=sizes, distortions=distortions, levels=levels, workers=workers,
                        work_dir=work_dir, progress=progress)
    refs = sorted(frame["reference"].unique())
    return BenchmarkResult(frame=frame, table=metrics_table(frame), references=refs, by_size=size_table(frame))


def _fmt(v) -> str:
    return "n/a" if pd.isna(v) else f"{v:.3f}"


def format_table(table: pd.DataFrame) -> str:
    """Fixed-width text table (metrics as rows), for the terminal."""
    t = table.drop(index=["n_references"], errors="ignore")
    cols = list(t.columns)
    width = max(len(c) for c in cols + ["0.000"]) + 2
    lines = [f"{'metric':<32}" + "".join(f"{c:>{width}}" for c in cols)]
    for name, row in t.iterrows():
        lines.append(f"{name:<32}" + "".join(f"{_fmt(v):>{width}}" for v in row))
    if "n_references" in table.index:
        lines.append(f"{'references':<32}" + "".join(f"{int(v):>{width}}" for v in table.loc["n_references"]))
    return "\n".join(lines)


def format_size_table(by_size: pd.DataFrame) -> str:
    """The per-size table as fixed-width text."""
    if by_size.empty:
        return ""
    cols = [c for c in by_size.columns if c not in ("size", "orientation", "n_references")]
    head = f"{'size':>6} {'orientation':<11} {'refs':>4}" + "".join(f" {c.replace('pairwise_', 'pw_'):>14}"
                                                                       for c in cols)
    lines = [head]
    for _, r in by_size.iterrows():
        lines.append(f"{int(r['size']):>6} {r['orientation']:<11} {int(r['n_references']):>4}"
                     + "".join(f" {_fmt(r[c]):>14}" for c in cols))
    return "\n".join(lines)


def plot(table: pd.DataFrame, path: str | os.PathLike, by_size: pd.DataFrame | None = None) -> Path:
    """Bar chart of pairwise accuracy per distortion and the summary metrics, seed vs iqc, and (when
    given) the key metrics per size; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = [r for r in table.index if r.startswith("pairwise_")] + [
        "monotonicity_all", "bokeh_above_soft", "harmless_kept", "precision_at_k", "best_pick_precision_at_k"]
    rows = [r for r in rows if r in table.index]
    labels = [r.replace("pairwise_", "").replace("_", " ") for r in rows]
    cols = list(table.columns)
    with_sizes = by_size is not None and not by_size.empty
    fig = Figure(figsize=(max(8.0, 0.9 * len(rows) + 2), 8.0 if with_sizes else 4.2), dpi=110)
    ax = fig.add_subplot(2 if with_sizes else 1, 1, 1)
    x = np.arange(len(rows))
    width = 0.8 / max(1, len(cols))
    colours = {"seed": "#b0b0b0", "iqc": "#2b6cb0"}
    for i, c in enumerate(cols):
        method, split = c.split(":")
        vals = table.loc[rows, c].astype(float).to_numpy()
        ax.bar(x + (i - (len(cols) - 1) / 2) * width, vals, width, label=c,
               color=colours.get(method, None), alpha={"all": 1.0, "calibration": 0.55}.get(split, 0.8),
               hatch="//" if split == "held_out" else None, edgecolor="white")
    ax.axhline(0.97, color="#c53030", lw=0.8, ls="--")
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("share of pairs ordered correctly")
    ax.set_title("Ranking quality: seed method vs iqc (CLIP off), all sizes", fontsize=10)
    ax.legend(fontsize=7, ncol=len(cols), loc="upper center", frameon=False)
    if with_sizes:
        ax2 = fig.add_subplot(2, 1, 2)
        whole = by_size[by_size["orientation"] == "all"]
        for metric in ("pairwise_all", "pairwise_gaussian_noise", "pairwise_jpeg", "monotonicity_all",
                       "precision_at_k", "best_pick_precision_at_k"):
            if metric in whole.columns:
                ax2.plot(whole["size"], whole[metric], marker="o", label=metric.replace("_", " "))
        ax2.set_xscale("log")
        ax2.minorticks_off()  # the log axis' own minor labels (6x10^2, 2x10^3) overlap the sizes
        ax2.set_xticks(list(whole["size"]), [str(s) for s in whole["size"]])
        ax2.set_ylim(0, 1.05)
        ax2.set_xlabel("long side of the photo file (px)")
        ax2.set_title("iqc by photo size", fontsize=10)
        ax2.legend(fontsize=7, ncol=3, loc="lower left", frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def write_outputs(result: BenchmarkResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``ranking_quality.csv`` (metrics), ``ranking_quality_by_size.csv``,
    ``ranking_quality_images.csv`` (per image) and a PNG plot."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = ranking.write_csv_atomic(result.table.reset_index(), out / "ranking_quality.csv")
    by_size = ranking.write_csv_atomic(result.by_size, out / "ranking_quality_by_size.csv")
    images = ranking.write_csv_atomic(result.frame, out / "ranking_quality_images.csv")
    png = plot(result.table, out / "ranking_quality.png", result.by_size)
    return {"table": table, "by_size": by_size, "images": images, "plot": png}


__all__ = ["BenchmarkResult", "BenchmarkUnavailable", "DEFAULT_REFERENCES", "PACKAGE_REFERENCES", "REFERENCES",
           "SIZES", "compute_metrics", "format_size_table", "format_table", "load_reference", "measure_set",
           "metrics_table", "plot", "rank_folder", "run_benchmark", "seed_scores", "size_table",
           "write_outputs"]

"""Ranking-quality benchmark: do the technical scores put the better photo first?

For every reference photograph the benchmark makes graded copies (three levels of each distortion in
:data:`iqc_dagster.core.degrade.DISTORTIONS`) plus a synthetic bokeh copy (sharp centre subject,
blurred background) and a uniformly softened copy. Every image goes through the production path: the
registry's ``measure`` and ``score`` on a :class:`~iqc_dagster.core.imaging.Decoded`, then
:func:`iqc_dagster.core.fusion.fuse` with :data:`~iqc_dagster.core.fusion.DEFAULT_WEIGHTS` and no CLIP
score (its weight is redistributed, as in production without CLIP).

Metrics (each for the product's ``final_score`` and for the seed method as a baseline):

* **pairwise accuracy**: share of (reference, distorted copy) pairs where the reference scores strictly
  higher; overall and per distortion type (ties count as wrong);
* **monotonicity**: share of (milder, harsher) pairs of the same distortion and reference where the
  milder copy scores strictly higher (levels 1>2, 2>3, 1>3);
* **bokeh**: share of references whose bokeh copy scores at least as high as the uniformly soft copy;
* **precision@K**: all references and graded copies pooled into one album, K = number of references:
  share of the top K that are clean references.

The *seed* baseline is the method the project started from: Laplacian variance, mean brightness and RMS
contrast, each min-max normalised over the whole benchmark set, fused with weights .35/.20/.10.

References are real photographs shipped in PyPI packages (scikit-image, scikit-learn, matplotlib;
dev/test dependencies, imported lazily here). They are split once, before any calibration, into
``calibration`` (the only ones looked at while choosing the scores' constants) and ``held_out``.

Pure Python: no Dagster import; the asset in ``iqc_dagster.defs.benchmark`` and ``iqc benchmark`` call it.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from iqc_dagster.core import degrade, fusion
from iqc_dagster.core import features as feat
from iqc_dagster.core.imaging import MAX_SIDE, Decoded

#: Benchmark format version (changes when the set or the metrics change).
BENCHMARK_VERSION = "rq1"


class BenchmarkUnavailable(RuntimeError):
    """A reference photo cannot be loaded (its package is not installed). ``str(exc)`` is one line."""


@dataclass(frozen=True)
class Reference:
    name: str
    package: str  # the PyPI package that ships the photo
    split: str  # "calibration", "held_out" or "extra" (not in the default set)
    description: str


def _ref(name, package, split, description):
    return name, Reference(name, package, split, description)


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
    # held out: never used to choose anything; reported separately
    _ref("motorcycle", "scikit-image", "held_out", "motorcycle (left view of the stereo pair), colour"),
    _ref("coins", "scikit-image", "held_out", "Greek coins on a dark ground, grey"),
    _ref("moon", "scikit-image", "held_out", "lunar surface, grey, low contrast"),
    _ref("gravel", "scikit-image", "held_out", "gravel texture, grey"),
    _ref("text", "scikit-image", "held_out", "handwriting on a board, grey"),
    _ref("china", "scikit-learn", "held_out", "Chinese temple, colour"),
    _ref("flower", "scikit-learn", "held_out", "flower close-up, colour"),
    _ref("grace_hopper", "matplotlib", "held_out", "portrait of Grace Hopper, colour"),
    # extra, only on request: real photos from a package that is not a dev dependency (checked last,
    # after every constant was fixed), and real images that are not scene photographs
    _ref("aero", "PyWavelets", "extra", "aerial photograph, grey"),
    _ref("ascent", "PyWavelets", "extra", "people climbing stairs, grey"),
    _ref("hubble_deep_field", "scikit-image", "extra", "Hubble deep field (telescope composite)"),
    _ref("retina", "scikit-image", "extra", "fundus photograph with a black mask"),
])

DEFAULT_REFERENCES: tuple[str, ...] = tuple(n for n, r in REFERENCES.items() if r.split != "extra")

#: The seed method's weights (no faces, no CLIP); redistributed to sum to one.
SEED_WEIGHTS = {"sharpness": 0.35, "exposure": 0.20, "contrast": 0.10}

METHODS = ("seed", "iqc")


def _missing(package: str, exc: Exception) -> BenchmarkUnavailable:
    return BenchmarkUnavailable(
        f"the ranking benchmark needs {package} for its reference photos ({exc.__class__.__name__}: {exc}); "
        f"install the dev extra: pip install -e '.[dev]'")


def load_reference(name: str) -> np.ndarray:
    """Reference ``name`` as H x W x 3 uint8 RGB, long side at most ``MAX_SIDE`` (as decoding does)."""
    if name not in REFERENCES:
        raise KeyError(f"unknown reference {name!r}; known: {', '.join(REFERENCES)}")
    pkg = REFERENCES[name].package
    try:
        if pkg == "PyWavelets":
            import pywt.data

            img = getattr(pywt.data, name)()
        elif pkg == "scikit-learn":
            from sklearn.datasets import load_sample_image

            img = load_sample_image(f"{name}.jpg")
        elif pkg == "matplotlib":
            import matplotlib.cbook
            from PIL import Image

            with Image.open(matplotlib.cbook.get_sample_data(f"{name}.jpg")) as im:
                img = np.asarray(im.convert("RGB"))
        else:
            import skimage.data

            if name == "motorcycle":
                img = skimage.data.stereo_motorcycle()[0]
            else:
                img = getattr(skimage.data, name)()
    except ImportError as exc:
        raise _missing(pkg, exc) from None
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    h, w = img.shape[:2]
    if max(h, w) > MAX_SIDE:
        import cv2

        s = MAX_SIDE / max(h, w)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def variants(name: str, img: np.ndarray, distortions: Sequence[str] | None = None,
             levels: Sequence[int] = degrade.LEVELS) -> Iterable[tuple[str, int, np.ndarray]]:
    """(kind, level, image): the reference (``reference``, 0), its graded copies, ``bokeh`` and ``soft``."""
    seed = zlib.crc32(name.encode())  # a different, reproducible noise pattern per reference
    yield "reference", 0, img
    for d in distortions or degrade.DISTORTIONS:
        fn = degrade.DISTORTIONS[d]
        for lv in levels:
            yield d, lv, (fn(img, lv, seed=seed) if d == "gaussian_noise" else fn(img, lv))
    yield "bokeh", 0, degrade.bokeh(img)
    yield "soft", 0, degrade.soften(img)


def seed_measures(decoded: Decoded) -> dict[str, float]:
    """The seed method's raw figures: Laplacian variance, mean brightness, RMS contrast (grey, 0..255)."""
    import cv2

    g = decoded.gray
    lap = cv2.Laplacian(g, cv2.CV_64F)
    return {"seed_laplacian_var": float(lap.var()), "seed_brightness": float(g.mean()),
            "seed_rms_contrast": float(g.std())}


def _measure_reference(name: str, distortions, levels) -> list[dict]:
    img = load_reference(name)
    rows = []
    for kind, level, out in variants(name, img, distortions, levels):
        d = Decoded(rgb=np.ascontiguousarray(out), source_width=out.shape[1], source_height=out.shape[0])
        measures = feat.measure_all(d)
        row = {"reference": name, "split": REFERENCES[name].split, "distortion": kind, "level": level}
        row.update(feat.score_photo(measures))
        for m in measures.values():
            row.update(m)
        row.update(seed_measures(d))
        rows.append(row)
    return rows


def _minmax(v: pd.Series) -> pd.Series:
    lo, hi = v.min(), v.max()
    return (v - lo) / (hi - lo) if hi > lo else v * 0.0


def seed_scores(frame: pd.DataFrame) -> pd.Series:
    """The seed's final score: min-max normalisation *within the set*, then the seed weights."""
    parts = {"sharpness": _minmax(frame["seed_laplacian_var"]),
             "exposure": _minmax(frame["seed_brightness"]),
             "contrast": _minmax(frame["seed_rms_contrast"])}
    total = sum(SEED_WEIGHTS.values())
    return sum(SEED_WEIGHTS[k] / total * v for k, v in parts.items())


def iqc_scores(frame: pd.DataFrame, weights: dict[str, float] | None = None) -> pd.Series:
    """The product's ``final_score``: :func:`fusion.fuse` of the registry's scores, CLIP off."""
    scores = frame.copy()
    scores["aesthetic"] = math.nan
    for col in fusion.score_columns().values():
        if col not in scores.columns:
            scores[col] = math.nan
    return fusion.fuse(scores, weights or fusion.DEFAULT_WEIGHTS).final_score


def measure_set(references: Sequence[str] | None = None, *, distortions: Sequence[str] | None = None,
                levels: Sequence[int] = degrade.LEVELS, workers: int | None = None) -> pd.DataFrame:
    """One row per benchmark image: reference, split, distortion, level, scores, raw measures, finals."""
    refs = list(references or DEFAULT_REFERENCES)
    for r in refs:
        if r not in REFERENCES:
            raise KeyError(f"unknown reference {r!r}; known: {', '.join(REFERENCES)}")
    bad = [d for d in (distortions or []) if d not in degrade.DISTORTIONS]
    if bad:
        raise KeyError(f"unknown distortion(s) {bad}; known: {', '.join(degrade.DISTORTIONS)}")
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        groups = list(pool.map(lambda r: _measure_reference(r, distortions, levels), refs))
    frame = pd.DataFrame([row for g in groups for row in g])
    frame["path"] = [f"{r}/{d}{lv or ''}" for r, d, lv in zip(frame["reference"], frame["distortion"],
                                                             frame["level"])]
    frame["iqc"] = iqc_scores(frame).to_numpy()
    frame["seed"] = seed_scores(frame).to_numpy()
    return frame


def _strict_share(pairs: list[tuple[float, float]]) -> float:
    """Share of pairs (better, worse) where better > worse; NaN for no pairs."""
    if not pairs:
        return math.nan
    return float(np.mean([a > b for a, b in pairs]))


def compute_metrics(frame: pd.DataFrame, method: str) -> dict[str, float]:
    """All metrics for score column ``method`` on the rows of ``frame`` (one or more references)."""
    graded = [d for d in degrade.DISTORTIONS if d in set(frame["distortion"])]
    per_type: dict[str, list] = {d: [] for d in graded}
    mono: dict[str, list] = {d: [] for d in graded}
    bokeh: list = []
    for _, grp in frame.groupby("reference", sort=True):
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
    out = {"pairwise_all": _strict_share([p for v in per_type.values() for p in v])}
    out.update({f"pairwise_{d}": _strict_share(v) for d, v in per_type.items()})
    out["monotonicity_all"] = _strict_share([p for v in mono.values() for p in v])
    out.update({f"monotonicity_{d}": _strict_share(v) for d, v in mono.items()})
    out["bokeh_above_soft"] = float(np.mean(bokeh)) if bokeh else math.nan
    pool = frame[~frame["distortion"].isin(["bokeh", "soft"])]
    k = int((pool["distortion"] == "reference").sum())
    if k:
        top = pool.sort_values([method, "path"], ascending=[False, True], kind="mergesort").head(k)
        out["precision_at_k"] = float((top["distortion"] == "reference").mean())
    else:
        out["precision_at_k"] = math.nan
    out["n_references"] = float(frame["reference"].nunique())
    return out


SPLITS = ("all", "calibration", "held_out")


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


@dataclass
class BenchmarkResult:
    frame: pd.DataFrame  # one row per image
    table: pd.DataFrame  # metrics x method:split
    references: list[str]
    notes: list[str] = field(default_factory=list)

    def metric(self, name: str, method: str = "iqc", split: str = "all") -> float:
        return float(self.table.loc[name, f"{method}:{split}"])


def run_benchmark(references: Sequence[str] | None = None, *, distortions: Sequence[str] | None = None,
                  levels: Sequence[int] = degrade.LEVELS, workers: int | None = None) -> BenchmarkResult:
    """Build the set, score it with the product and the seed method, and compute the metrics."""
    frame = measure_set(references, distortions=distortions, levels=levels, workers=workers)
    refs = sorted(frame["reference"].unique())
    return BenchmarkResult(frame=frame, table=metrics_table(frame), references=refs)


def format_table(table: pd.DataFrame) -> str:
    """Fixed-width text table (metrics as rows), for the terminal."""
    t = table.drop(index=["n_references"], errors="ignore")
    cols = list(t.columns)
    width = max(len(c) for c in cols + ["0.000"]) + 2
    lines = [f"{'metric':<32}" + "".join(f"{c:>{width}}" for c in cols)]
    for name, row in t.iterrows():
        lines.append(f"{name:<32}" + "".join(f"{'n/a' if pd.isna(v) else f'{v:.3f}':>{width}}" for v in row))
    if "n_references" in table.index:
        lines.append(f"{'references':<32}" + "".join(f"{int(v):>{width}}" for v in table.loc["n_references"]))
    return "\n".join(lines)


def plot(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Bar chart of pairwise accuracy per distortion and the summary metrics, seed vs iqc; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = [r for r in table.index if r.startswith("pairwise_")] + [
        "monotonicity_all", "bokeh_above_soft", "precision_at_k"]
    labels = [r.replace("pairwise_", "").replace("_", " ") for r in rows]
    cols = list(table.columns)
    fig = Figure(figsize=(max(8.0, 0.9 * len(rows) + 2), 4.2), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
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
    ax.set_title("Ranking quality: seed method vs iqc (CLIP off)", fontsize=10)
    ax.legend(fontsize=7, ncol=len(cols), loc="upper center", frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def write_outputs(result: BenchmarkResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``ranking_quality.csv`` (metrics), ``ranking_quality_images.csv`` (per image) and a PNG plot."""
    from iqc_dagster.core.ranking import write_csv_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = write_csv_atomic(result.table.reset_index(), out / "ranking_quality.csv")
    images = write_csv_atomic(result.frame, out / "ranking_quality_images.csv")
    png = plot(result.table, out / "ranking_quality.png")
    return {"table": table, "images": images, "plot": png}


__all__ = ["BenchmarkResult", "BenchmarkUnavailable", "DEFAULT_REFERENCES", "REFERENCES", "compute_metrics",
           "format_table", "load_reference", "measure_set", "metrics_table", "plot", "run_benchmark",
           "seed_scores", "iqc_scores", "variants", "write_outputs"]


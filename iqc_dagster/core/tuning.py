"""Learn the fusion weights from preferences with Optuna, and keep the result where rankings find it.

**Objective.** Pairwise agreement: over pairs *(better, worse)* of photos, the share where
:func:`iqc_dagster.core.fusion.fuse` gives the better photo the higher ``final_score`` (a tie counts
half). It is never a label-free proxy such as score spread. The pairs come from

* **ratings** (:mod:`iqc_dagster.core.ratings`): every two photos *of the same album* whose ratings
  differ; the photo's split key is its content hash; or, when there are too few rated pairs,
* **synthetic degradations** (:mod:`iqc_dagster.bench.benchmark`): each reference photo above each of
  its graded copies, a milder copy above a harsher one of the same distortion, and the bokeh copy above
  the uniformly soft one; the split key is the reference photo.

**Split.** By key, never by pair: every photo (or reference, with all its copies) is either in the
*tune* part or in the *held-out* part; pairs across the two are dropped. Synthetic pairs use the
benchmark's own split (``calibration`` → tune, ``held_out`` → held-out: the held-out references were
never looked at while the scores were calibrated); ratings use a hash of the content hash.

**Search.** Optuna's TPE sampler (seeded) over one weight per score that has values in the data, each
in [0, 1], normalised; scores without data (``aesthetic`` when CLIP is off, and always on the
synthetic set) keep their default share. The first trial of a new study is the defaults. The study
lives in an SQLite file (Optuna's RDB storage) under a name made from the objective and a fingerprint
of the data, so the same command on the same data resumes it and adds trials.

The score calibrations themselves (the ramps inside each feature) are not tuned: they are absolute,
versioned with the feature cache and fixed on the benchmark's calibration split; fitting them to the
same pairs would leave nothing honest to hold out.

**Storage.** One row per tuning run in the DuckDB table ``tuned_weights`` (schema and SQL in
:mod:`iqc_dagster.core.store`); :func:`accepted_weights` says which weights rankings use (see its
docstring for the rule) and :func:`weights_for_ranking` applies it.

Pure Python: no Dagster import.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from iqc_dagster.core import fusion

#: Bump when the search space or the objective changes: it is part of every study name.
SPACE_VERSION = "tw1"
#: Salt of the hash split of rated photos.
SPLIT_SALT = "iqc-tune-split-1"
DEFAULT_HELDOUT_FRACTION = 0.4
DEFAULT_TRIALS = 60
DEFAULT_SEED = 0
#: Fewer rated pairs than this in either part and ratings are not enough to tune on.
MIN_RATED_PAIRS = 5
#: At most this many rated pairs per album (a deterministic sample beyond it).
MAX_PAIRS_PER_ALBUM = 100_000
#: Weights are stored (and evaluated) rounded to this many decimals.
WEIGHT_DECIMALS = 4
STORAGE_FILE = "optuna.sqlite3"
#: Trials are written to the study file in batches of this many (and at the end of a run).
FLUSH_EVERY = 25

OBJECTIVE_RATINGS = "pairwise_agreement:ratings"
OBJECTIVE_SYNTHETIC = "pairwise_agreement:synthetic_degradations"

TUNE, HELDOUT = "tune", "heldout"


class TuningError(RuntimeError):
    """Tuning cannot run (no usable preferences, bad labels …); ``str(exc)`` is one line for users."""


# --- preferences --------------------------------------------------------------------------------

@dataclass
class Preferences:
    """Photos with their calibrated scores, pairs (better, worse) between them, and a split key each."""

    scores: pd.DataFrame  # one row per photo: "item", "key", and score columns (NaN = not measured)
    pairs: np.ndarray  # int array (n, 2): row positions in ``scores`` of (better, worse)
    source: str  # "ratings" or "synthetic"
    assignment: dict[str, str]  # split key -> "tune" / "heldout"
    notes: list[str] = field(default_factory=list)

    @property
    def objective(self) -> str:
        return OBJECTIVE_RATINGS if self.source == "ratings" else OBJECTIVE_SYNTHETIC

    def split_pairs(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(tune pairs, held-out pairs, number of pairs dropped because they cross the split)."""
        part = np.array([self.assignment[k] for k in self.scores["key"]], dtype=object)
        if len(self.pairs) == 0:
            empty = np.zeros((0, 2), dtype=np.int64)
            return empty, empty, 0
        a, b = part[self.pairs[:, 0]], part[self.pairs[:, 1]]
        tune = self.pairs[(a == TUNE) & (b == TUNE)]
        held = self.pairs[(a == HELDOUT) & (b == HELDOUT)]
        return tune, held, int(len(self.pairs) - len(tune) - len(held))

    def keys_in(self, part: str) -> list[str]:
        return sorted(k for k, v in self.assignment.items() if v == part)


def _unit_hash(text: str) -> float:
    h = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0 ** 64


def split_keys(keys: Sequence[str], heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
               salt: str = SPLIT_SALT) -> dict[str, str]:
    """Deterministic split of ``keys``: a key is held out when the hash of ``salt/key`` < fraction.

    With two or more keys both parts are non-empty (the key with the most extreme hash moves).
    """
    uniq = sorted(set(keys))
    u = {k: _unit_hash(f"{salt}/{k}") for k in uniq}
    out = {k: HELDOUT if u[k] < heldout_fraction else TUNE for k in uniq}
    if len(uniq) >= 2:
        if all(v == TUNE for v in out.values()):
            out[min(uniq, key=lambda k: u[k])] = HELDOUT
        elif all(v == HELDOUT for v in out.values()):
            out[max(uniq, key=lambda k: u[k])] = TUNE
    return out


def _score_cols() -> list[str]:
    return list(dict.fromkeys(fusion.score_columns().values()))


def ratings_preferences(scores: pd.DataFrame, ratings: Mapping[tuple[str, str], float], *,
                        heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
                        max_pairs_per_album: int = MAX_PAIRS_PER_ALBUM, salt: str = SPLIT_SALT,
                        ) -> Preferences:
    """Pairs of photos of the same album whose ratings differ (higher rating = better).

    ``scores``: one row per photo with ``album``, ``path``, ``content_hash`` and score columns.
    ``ratings``: ``{(album, path): rating}``. The split key is the content hash (a photo copied into
    two albums lands in one part).
    """
    df = scores.copy()
    df["rating"] = [ratings.get((a, p), math.nan) for a, p in zip(df["album"], df["path"])]
    df = df[df["rating"].notna()].reset_index(drop=True)
    df["item"] = df["album"].astype(str) + "/" + df["path"].astype(str)
    df["key"] = df["content_hash"].astype(str)
    pairs = []
    rng = np.random.default_rng(0)
    for _, idx in df.groupby("album", sort=True).indices.items():
        r = df["rating"].to_numpy(float)[idx]
        i, j = np.nonzero(r[:, None] > r[None, :])
        p = np.stack([idx[i], idx[j]], axis=1)
        if len(p) > max_pairs_per_album:
            p = p[np.sort(rng.choice(len(p), max_pairs_per_album, replace=False))]
        pairs.append(p)
    pairs_arr = np.concatenate(pairs).astype(np.int64) if pairs else np.zeros((0, 2), np.int64)
    cols = [c for c in _score_cols() if c in df.columns]
    out = df[["item", "key", "album", "path", "rating", *cols]]
    return Preferences(scores=out, pairs=pairs_arr, source="ratings",
                       assignment=split_keys(out["key"].tolist(), heldout_fraction, salt))


def synthetic_preferences(frame: pd.DataFrame, *, use_benchmark_split: bool = True,
                          heldout_fraction: float = DEFAULT_HELDOUT_FRACTION) -> Preferences:
    """Pairs from the ranking-quality benchmark's images (:func:`benchmark.measure_set` rows).

    Reference above each graded copy; milder above harsher (same distortion and reference); bokeh
    above soft. Split by reference: the benchmark's ``calibration`` / ``held_out`` split when the set
    has references of both, else a hash split of the reference names.
    """
    df = frame.reset_index(drop=True)
    # harmless copies (a good re-save, a downscale) are neither better nor worse than their reference
    graded = df[~df["distortion"].isin(["reference", "bokeh", "soft", "resave", "downscaled"])]
    group = "set" if "set" in df.columns else "reference"  # one reference at one size
    pairs = []
    for ref, grp in df.groupby(group, sort=True):
        kinds = dict(zip(zip(grp["distortion"], grp["level"]), grp.index))
        r = kinds.get(("reference", 0))
        g = graded[graded[group] == ref]
        if r is not None:
            pairs += [(r, i) for i in g.index]
        for _, d in g.groupby("distortion", sort=True):
            lv = d.sort_values("level")
            idx, levels = lv.index.tolist(), lv["level"].tolist()
            pairs += [(idx[a], idx[b]) for a in range(len(idx)) for b in range(a + 1, len(idx))
                      if levels[a] < levels[b]]
        if ("bokeh", 0) in kinds and ("soft", 0) in kinds:
            pairs.append((kinds[("bokeh", 0)], kinds[("soft", 0)]))
    scores = df.copy()
    scores["item"] = df["path"] if "path" in df.columns else (
        df["reference"] + "/" + df["distortion"] + df["level"].astype(str))
    scores["key"] = df["reference"].astype(str)
    assignment = None
    notes = []
    if use_benchmark_split and "split" in df.columns:
        by_ref = dict(zip(df["reference"], df["split"]))
        parts = {k: (HELDOUT if s == "held_out" else TUNE) for k, s in by_ref.items()}
        if len(set(parts.values())) == 2:
            assignment = parts
            notes.append("split: the benchmark's calibration references tune, its held-out references report")
    if assignment is None:
        assignment = split_keys(scores["key"].tolist(), heldout_fraction, SPLIT_SALT)
        notes.append("split: hash of the reference name")
    cols = [c for c in _score_cols() if c in scores.columns]
    extra = [c for c in ("distortion", "level") if c in scores.columns]
    return Preferences(scores=scores[["item", "key", *extra, *cols]],
                       pairs=np.array(pairs, np.int64).reshape(-1, 2), source="synthetic",
                       assignment=assignment, notes=notes)


def gather_preferences(album_scores: pd.DataFrame, photo_root: str | os.PathLike, *,
                       labels_csv: str | os.PathLike | None = None, use_clip: bool = True,
                       synthetic: Callable[[], pd.DataFrame] | None = None,
                       heldout_fraction: float = DEFAULT_HELDOUT_FRACTION, min_pairs: int = MIN_RATED_PAIRS,
                       log: Callable[[str], None] | None = None) -> Preferences:
    """The preferences to tune on: the user's ratings when there are enough, else the synthetic pairs.

    ``album_scores``: one row per photo of every album (``album``, ``path``, ``content_hash`` and the
    score columns). Ratings come from ``labels_csv`` first, then each photo's sidecar / embedded XMP /
    EXIF (:func:`ratings.collect_ratings`). They are used when both parts of the split get at least
    ``min_pairs`` pairs; with fewer, an explicit ``labels_csv`` is an error (the user asked for it),
    ratings found in the files only give a note and the synthetic pairs are used.
    ``use_clip=False`` leaves the ``aesthetic`` score out, so its weight stays at its default share.
    """
    from iqc_dagster.core import ratings as rt

    log = log or (lambda msg: None)
    scores = album_scores.copy()
    if not use_clip and fusion.AESTHETIC_COLUMN in scores.columns:
        scores = scores.drop(columns=[fusion.AESTHETIC_COLUMN])
    notes: list[str] = []
    photos = list(zip(scores["album"], scores["path"])) if not scores.empty else []
    try:
        found, rnotes = rt.collect_ratings(photos, photo_root, labels_csv)
    except rt.LabelsError as exc:
        raise TuningError(str(exc)) from None
    notes += rnotes
    if found:
        by_source: dict[str, int] = {}
        for r in found.values():
            by_source[r.source] = by_source.get(r.source, 0) + 1
        notes.append("ratings: " + ", ".join(f"{n} from {s}" for s, n in sorted(by_source.items())))
        prefs = ratings_preferences(scores, {k: r.value for k, r in found.items()},
                                    heldout_fraction=heldout_fraction)
        tune, held, _ = prefs.split_pairs()
        if len(tune) >= min_pairs and len(held) >= min_pairs:
            prefs.notes = notes + [f"objective: the user's ratings ({len(found)} rated photos, split by "
                                   f"photo)"]
            for n in prefs.notes:
                log(n)
            return prefs
        msg = (f"{len(found)} rated photo(s) give {len(tune)} pair(s) to tune on and {len(held)} held out; "
               f"at least {min_pairs} of each are needed (pairs are photos of the same album with "
               f"different ratings)")
        if labels_csv:
            raise TuningError(msg + "; rate more photos, or leave out --labels to tune on the synthetic "
                                    "degradation benchmark")
        notes.append(msg + "; using the synthetic degradation pairs instead")
    elif labels_csv:
        raise TuningError(f"labels CSV {labels_csv} matched none of the {len(photos)} scored photo(s) under "
                          f"{photo_root}; 'file' must be absolute, album/photo.jpg, or photo.jpg")
    else:
        notes.append("no ratings found (labels CSV, XMP sidecars, embedded XMP/EXIF): using the synthetic "
                     "degradation pairs")
    if synthetic is None:
        raise TuningError("no ratings to tune on and no synthetic benchmark set")
    prefs = synthetic_preferences(synthetic(), heldout_fraction=heldout_fraction)
    prefs.notes = [*notes, "objective: synthetic degradation pairs of the ranking-quality benchmark",
                   *prefs.notes]
    for n in prefs.notes:
        log(n)
    return prefs


# --- objective ----------------------------------------------------------------------------------

def pairwise_agreement(final: np.ndarray, pairs: np.ndarray) -> float:
    """Share of pairs (better, worse) with final[better] > final[worse]; ties and NaN count half."""
    if len(pairs) == 0:
        return math.nan
    a, b = final[pairs[:, 0]], final[pairs[:, 1]]
    win = np.where(np.isfinite(a) & np.isfinite(b), (a > b) + 0.5 * (a == b), 0.5)
    return float(win.mean())


def _fusion_frame(scores: pd.DataFrame) -> pd.DataFrame:
    out = scores.copy()
    for col in _score_cols():
        if col not in out.columns:
            out[col] = math.nan
    return out


def final_scores(scores: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """The production ``final_score`` (:func:`fusion.fuse`) of every row."""
    return fusion.fuse(_fusion_frame(scores), weights).final_score.to_numpy(dtype=float)


def agreement(scores: pd.DataFrame, pairs: np.ndarray, weights: Mapping[str, float]) -> float:
    return pairwise_agreement(final_scores(scores, weights), pairs)


def tunable_keys(scores: pd.DataFrame) -> list[str]:
    """Weight keys whose score column has at least one value in ``scores``, less the penalty-only ones
    (``fusion.PENALTY_ONLY``: eyes, face focus), which keep their default share: how much a blink costs
    is a fixed rule, and a handful of ratings rarely holds a blink to learn it from (a weight the
    ratings cannot see would be set at random)."""
    return [k for k, c in fusion.score_columns().items()
            if k not in fusion.PENALTY_ONLY and c in scores.columns and scores[c].notna().any()]


def weights_from_raw(raw: Mapping[str, float], tuned: Sequence[str],
                     defaults: Mapping[str, float] = fusion.DEFAULT_WEIGHTS) -> dict[str, float]:
    """Full weight set summing to 1: the untuned keys keep their default share, the tuned ones share
    the rest in proportion to ``raw`` (uniformly when every raw value is 0). Rounded for storage."""
    total = sum(defaults.values())
    fixed = {k: v / total for k, v in defaults.items() if k not in tuned}
    mass = 1.0 - sum(fixed.values())
    s = sum(max(0.0, float(raw[k])) for k in tuned)
    share = {k: (max(0.0, float(raw[k])) / s if s > 0 else 1.0 / len(tuned)) * mass for k in tuned}
    out = {**fixed, **share}
    return {k: round(out[k], WEIGHT_DECIMALS) for k in fusion.score_columns() if k in out}


# --- the study ----------------------------------------------------------------------------------

@dataclass
class TuneResult:
    study_name: str
    storage: str
    objective: str
    source: str
    best_weights: dict[str, float]
    tuned_keys: list[str]
    n_trials: int  # trials in the study after this run (earlier runs included)
    n_new_trials: int
    tune_default: float
    tune_tuned: float
    heldout_default: float
    heldout_tuned: float
    n_pairs_tune: int
    n_pairs_heldout: int
    n_pairs_dropped: int
    keys_tune: list[str]
    keys_heldout: list[str]
    history: pd.DataFrame  # number, value (tune agreement), best_so_far
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def weights(self) -> fusion.Weights:
        return fusion.Weights(values=dict(self.best_weights), source=f"tuned:{self.study_name}")

    @property
    def accepted(self) -> bool:
        return is_acceptable(self.heldout_tuned, self.heldout_default)

    def summary(self) -> dict:
        """The JSON ``iqc tune`` prints (required keys first)."""
        return {
            "best_weights": self.best_weights,
            "heldout_default": _r(self.heldout_default),
            "heldout_tuned": _r(self.heldout_tuned),
            "n_trials": self.n_trials,
            "objective": self.objective,
            "tune_default": _r(self.tune_default),
            "tune_tuned": _r(self.tune_tuned),
            "n_new_trials": self.n_new_trials,
            "n_pairs_tune": self.n_pairs_tune,
            "n_pairs_heldout": self.n_pairs_heldout,
            "study": self.study_name,
            "weights_id": self.weights.weights_id,
            "used_for_ranking": self.accepted,
        }


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def storage_url(directory: str | os.PathLike) -> str:
    """Optuna RDB storage in an SQLite file ``<directory>/optuna.sqlite3``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(d / STORAGE_FILE).resolve()}"


def open_storage(url: str):
    """Optuna's RDB storage on the SQLite file of ``url``, in WAL mode with ``synchronous=NORMAL``.

    Optuna commits a dozen times per trial; with SQLite's default full sync each commit waits for the
    disk (about 10 ms here), which made a trial cost 0.25 s. WAL keeps the file consistent after a crash
    (a power cut may lose the last trials, never the study).
    """
    import sqlite3

    import optuna

    path = url.removeprefix("sqlite:///")

    def connect():
        conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return optuna.storages.RDBStorage(url, engine_kwargs={"creator": connect})


def study_name(prefs: Preferences, tuned: Sequence[str]) -> str:
    """``iqc-<source>-<fingerprint>``: the same data, split and search space give the same study."""
    cols = [fusion.score_columns()[k] for k in tuned]
    h = hashlib.sha1()
    h.update(json.dumps({"space": SPACE_VERSION, "objective": prefs.objective, "tuned": list(tuned),
                         "defaults": fusion.DEFAULT_WEIGHTS,
                         "assignment": sorted(prefs.assignment.items())}, sort_keys=True).encode())
    vals = prefs.scores[cols].to_numpy(dtype=float).round(6)
    h.update(np.nan_to_num(vals, nan=-1.0).tobytes())
    h.update(prefs.scores["item"].astype(str).str.cat(sep="\n").encode())
    h.update(np.ascontiguousarray(prefs.pairs, dtype=np.int64).tobytes())
    return f"iqc-{prefs.source}-{h.hexdigest()[:12]}"


def run_study(prefs: Preferences, *, n_trials: int = DEFAULT_TRIALS, storage_dir: str | os.PathLike,
              seed: int = DEFAULT_SEED, log: Callable[[str], None] | None = None) -> TuneResult:
    """Tune the weights on the tune pairs (resuming the stored study) and report both parts."""
    import optuna

    log = log or (lambda msg: None)
    t0 = time.monotonic()
    if n_trials < 0:
        raise TuningError("the number of trials cannot be negative")
    tune_pairs, held_pairs, dropped = prefs.split_pairs()
    if len(tune_pairs) == 0 or len(held_pairs) == 0:
        raise TuningError(f"need preference pairs on both sides of the split; have {len(tune_pairs)} to tune "
                          f"on and {len(held_pairs)} held out")
    tuned = tunable_keys(prefs.scores)
    if not tuned:
        raise TuningError("no score has values for the photos with preferences")
    scores = _fusion_frame(prefs.scores)
    name = study_name(prefs, tuned)
    url = storage_url(storage_dir)
    storage = open_storage(url)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the seed moves on with the trials already stored, so a resumed study does not replay its start
    stored_study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                       load_if_exists=True)
    stored_study.set_user_attr("objective", prefs.objective)
    stored_study.set_user_attr("tuned_keys", list(tuned))
    state = optuna.trial.TrialState
    finished = (state.COMPLETE, state.PRUNED, state.FAIL)
    stored = stored_study.get_trials(deepcopy=False, states=finished)
    existing = len(stored)
    # Trials run against an in-memory copy and are written to the SQLite study in batches: Optuna's
    # RDB storage re-reads every trial through the ORM on each suggestion (~0.2 s a trial here),
    # in memory a trial costs a few ms. The seed moves on with the stored trials, so a resumed study
    # does not replay its first random trials.
    sampler = optuna.samplers.TPESampler(seed=seed + existing, n_startup_trials=10)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trials(stored)
    if existing == 0:
        study.enqueue_trial({f"w_{k}": float(fusion.DEFAULT_WEIGHTS.get(k, 0.0)) for k in tuned})
    log(f"study {name}: {existing} stored trial(s), running {n_trials} more; tuning {', '.join(tuned)} "
        f"on {len(tune_pairs)} pairs, {len(held_pairs)} held out")

    def objective(trial: optuna.Trial) -> float:
        raw = {k: trial.suggest_float(f"w_{k}", 0.0, 1.0) for k in tuned}
        w = weights_from_raw(raw, tuned)
        trial.set_user_attr("weights", w)
        return pairwise_agreement(final_scores(scores, w), tune_pairs)

    flushed = [existing]

    def flush(*_args) -> None:
        todo = [t for t in study.get_trials(deepcopy=False)[flushed[0]:] if t.state in finished]
        if _args and len(todo) < FLUSH_EVERY:
            return
        if todo:
            stored_study.add_trials(todo)
            flushed[0] += len(todo)

    try:
        if n_trials:
            study.optimize(objective, n_trials=n_trials, gc_after_trial=False, callbacks=[flush])
    finally:
        flush()  # also when interrupted: every finished trial is kept
    n_total = len(stored_study.get_trials(deepcopy=False, states=finished))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise TuningError(f"study {name} has no completed trial; run with --trials 1 or more")
    best = max(done, key=lambda t: (t.value, -t.number))  # the earliest of equally good trials
    best_w = dict(best.user_attrs.get("weights") or weights_from_raw(
        {k[2:]: v for k, v in best.params.items()}, tuned))
    default = dict(fusion.DEFAULT_WEIGHTS)
    hist = pd.DataFrame({"number": [t.number for t in done], "value": [t.value for t in done]})
    hist["best_so_far"] = hist["value"].cummax()
    res = TuneResult(
        study_name=name, storage=url, objective=prefs.objective, source=prefs.source,
        best_weights=best_w, tuned_keys=list(tuned), n_trials=n_total, n_new_trials=n_trials,
        tune_default=agreement(scores, tune_pairs, default), tune_tuned=float(best.value),
        heldout_default=agreement(scores, held_pairs, default),
        heldout_tuned=agreement(scores, held_pairs, best_w),
        n_pairs_tune=len(tune_pairs), n_pairs_heldout=len(held_pairs), n_pairs_dropped=dropped,
        keys_tune=prefs.keys_in(TUNE), keys_heldout=prefs.keys_in(HELDOUT), history=hist,
        seconds=round(time.monotonic() - t0, 2), notes=list(prefs.notes))
    if dropped:
        res.notes.append(f"{dropped} pair(s) crossing the split were not used")
    log(f"best trial #{best.number}: tune {res.tune_tuned:.4f} (default {res.tune_default:.4f}); held-out "
        f"{res.heldout_tuned:.4f} (default {res.heldout_default:.4f})")
    return res


def plot_history(result: TuneResult, path: str | os.PathLike) -> Path:
    """PNG of the trial history: each trial's tune agreement, the best so far, the defaults, and the
    held-out figures of the defaults and the tuned weights."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    h = result.history
    fig = Figure(figsize=(7.5, 4.0), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(h["number"], h["value"], s=10, color="#90a4c0", label="trial (tune pairs)")
    ax.step(h["number"], h["best_so_far"], where="post", color="#2b6cb0", lw=1.6, label="best so far (tune)")
    ax.axhline(result.tune_default, color="#718096", ls=":", lw=1,
               label=f"defaults, tune {result.tune_default:.3f}")
    ax.axhline(result.heldout_default, color="#c53030", ls="--", lw=1,
               label=f"defaults, held-out {result.heldout_default:.3f}")
    ax.axhline(result.heldout_tuned, color="#2f855a", ls="--", lw=1.2,
               label=f"tuned, held-out {result.heldout_tuned:.3f}")
    ax.set_xlabel("trial")
    ax.set_ylabel("pairwise agreement")
    ax.set_title(f"{result.study_name} ({result.objective})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


# --- synthetic benchmark set, cached ------------------------------------------------------------

def synthetic_frame(cache_dir: str | os.PathLike, references: Sequence[str] | None = None, *,
                    distortions: Sequence[str] | None = None, workers: int | None = None,
                    log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """The benchmark's images with their calibrated scores (:func:`benchmark.measure_set`), cached as a
    CSV under ``cache_dir`` keyed by the benchmark version, the feature versions and the selection."""
    from iqc_dagster.bench import benchmark
    from iqc_dagster.core import features as feat

    refs = list(references or benchmark.PACKAGE_REFERENCES)
    key = json.dumps({"bench": benchmark.BENCHMARK_VERSION, "refs": refs, "dist": list(distortions or []),
                      "features": {n: f.cache_version for n, f in feat.FEATURES.items()}}, sort_keys=True)
    path = Path(cache_dir) / f"synthetic_{hashlib.sha1(key.encode()).hexdigest()[:12]}.csv"
    if not path.exists():
        t0 = time.monotonic()
        (log or (lambda m: None))(f"scoring the synthetic benchmark set ({len(refs)} reference photos); "
                                  f"cached in {path}")
        # each reference as a file at its own size, through the same path as the benchmark
        frame = benchmark.measure_set(refs, sizes=(None,), distortions=distortions, workers=workers)
        keep = ["reference", "split", "set", "distortion", "level", "path",
                *[c for c in _score_cols() if c in frame.columns]]
        from iqc_dagster.core.files import write_atomic

        write_atomic(path, frame[keep].to_csv(index=False, float_format="%.8g").encode("utf-8"))
        (log or (lambda m: None))(f"scored {len(frame)} images in {time.monotonic() - t0:.1f}s")
    return pd.read_csv(path, keep_default_na=True)


# --- DuckDB: tuned_weights (schema and SQL in iqc_dagster.core.store) -------------------------------

def all_album_scores(conn, albums: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per scored photo of the given albums (all albums with scores by default): ``album``,
    ``path``, ``content_hash`` and the calibrated score columns (raw measurements left out)."""
    from iqc_dagster.core import store

    if albums is None:
        albums = store.albums_with_scores(conn)
    frames = []
    for album in albums:
        wide = store.album_scores(conn, album)
        if wide.empty:
            continue
        keep = ["path", "content_hash", *[c for c in _score_cols() if c in wide.columns]]
        frames.append(wide[keep].assign(album=album))
    if not frames:
        return pd.DataFrame(columns=["album", "path", "content_hash"])
    out = pd.concat(frames, ignore_index=True)
    return out[["album", *[c for c in out.columns if c != "album"]]]


def save_result(conn, result: TuneResult, details: Mapping | None = None) -> str:
    """Append one ``tuned_weights`` row for ``result``; returns its weights_id."""
    import datetime as dt

    from iqc_dagster.core import store

    store.ensure_schema(conn)
    w = result.weights
    info = {"tuned_keys": result.tuned_keys, "keys_heldout": result.keys_heldout,
            "n_pairs_dropped": result.n_pairs_dropped, "notes": result.notes, **(details or {})}
    store.save_tuned_weights(conn, [
        w.weights_id, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), result.study_name,
        result.objective, json.dumps(w.values, sort_keys=True), _nan_none(result.heldout_default),
        _nan_none(result.heldout_tuned), _nan_none(result.tune_default), _nan_none(result.tune_tuned),
        result.n_trials, result.n_pairs_tune, result.n_pairs_heldout, json.dumps(info, default=str)])
    return w.weights_id


def _nan_none(x):
    return None if x is None or not math.isfinite(x) else float(x)


def latest_row(conn) -> dict | None:
    """The most recent ``tuned_weights`` row as a dict, or None (also when the table does not exist)."""
    from iqc_dagster.core import store

    return store.latest_tuned_weights(conn)


def is_acceptable(heldout_tuned, heldout_default) -> bool:
    """Tuned weights are used only when their held-out agreement is known and not below the defaults'."""
    try:
        t, d = float(heldout_tuned), float(heldout_default)
    except (TypeError, ValueError):
        return False
    return math.isfinite(t) and math.isfinite(d) and t >= d


def accepted_weights(conn) -> fusion.Weights | None:
    """The weights rankings should use instead of the defaults, or None.

    Rule: take the **latest** tuning run (``tuned_weights`` row). Its weights are used when its
    held-out agreement is at least the defaults' held-out agreement on the same pairs and the weights
    are valid; otherwise (worse on held-out, unknown, invalid, or never tuned) the defaults are used.
    An older run is never brought back when the latest one was rejected.
    """
    row = latest_row(conn)
    if row is None or not is_acceptable(row["heldout_tuned"], row["heldout_default"]):
        return None
    try:
        values = fusion.validate_weights(json.loads(row["weights"]))
    except (ValueError, TypeError):
        return None
    return fusion.Weights(values=values, source=f"tuned:{row['study']}")


def weights_for_ranking(conn) -> fusion.Weights:
    """The weights a ranking made now should use (what the ``ranking_weights`` asset selects).

    The latest ``tuned_weights`` run (``iqc tune`` / the ``tuned_weights`` asset) when its held-out
    agreement is not below the defaults' on the same held-out pairs (source ``tuned:<study>``);
    otherwise — never tuned, or the latest tuning did worse held-out — the documented defaults
    (source ``default``). See :func:`accepted_weights`.
    """
    tuned = accepted_weights(conn)
    if tuned is not None:
        return tuned
    return fusion.Weights(values=dict(fusion.DEFAULT_WEIGHTS), source="default")


def _clean(o):
    """JSON-safe copy: NaN/inf become null, numpy scalars plain numbers."""
    if isinstance(o, Mapping):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    return o


def result_to_json(result: TuneResult) -> str:
    """Everything about a run (summary, weights, split, trial history) as indented JSON."""
    d = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "history"}
    d["history"] = result.history.to_dict(orient="list")
    d["weights_id"] = result.weights.weights_id
    d["used_for_ranking"] = result.accepted
    return json.dumps(_clean(d), indent=2, sort_keys=False)


__all__ = ["OBJECTIVE_RATINGS", "OBJECTIVE_SYNTHETIC", "Preferences", "TuneResult", "TuningError",
           "accepted_weights", "agreement", "final_scores", "is_acceptable", "latest_row",
           "pairwise_agreement", "plot_history", "ratings_preferences", "run_study", "save_result",
           "split_keys", "study_name", "synthetic_frame", "synthetic_preferences", "tunable_keys",
           "weights_for_ranking", "weights_from_raw"]

"""Exposure brackets and focus stacks, told from EXIF: sequences a photographer shot on purpose, to merge
(HDR, focus stacking) rather than to choose from.

Perceptual hashes cannot tell them: a -2 EV and a +2 EV frame of one scene differ in most hash bits, and
the frames of a focus stack differ in what is sharp. They are told from the camera's own record
(:func:`read_exif`, exiv2 via :func:`iqc_dagster.core.raw.exif_fields`):

* **exposure bracket** (``"bracket"``): at least :attr:`Rules.min_frames` consecutive frames (capture
  order), each within :attr:`Rules.max_gap_s` seconds of the previous and all within
  :attr:`Rules.max_span_s`, same camera, focal length and image size (same framing), whose exposure
  values are all different and, sorted, step evenly (within :attr:`Rules.step_tolerance` EV, steps of at
  least :attr:`Rules.min_step_ev`). The exposure value is the EXIF exposure bias when it varies (auto
  exposure bracketing: 0, -1, +1), else log2 of exposure time x ISO / f-number² (manual brackets).
* **focus stack** (``"focus_stack"``): as many frames, as close in time, with the same exposure
  settings, whose subject distance (EXIF ``SubjectDistance`` or a maker note's focus distance) changes
  in one direction at every frame.

Panorama sequences are not detected: telling overlap needs image registration, which is not cheap.

Frames in a sequence form one group of its kind (:func:`iqc_dagster.core.dedup.group_photos`); the best
frame is still marked, but no frame is "a duplicate, lower score" and none is given a reject rating
(:mod:`iqc_dagster.core.xmp`). No Dagster import here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

#: Group kinds of a sequence whose every frame is kept (no frame is a lesser duplicate of another).
KINDS = ("bracket", "focus_stack")
#: The EXIF columns :func:`find_sequences` reads (from :class:`iqc_dagster.core.raw.ExifFields`).
EXIF_COLUMNS = ["captured_at", "exposure_bias", "exposure_time", "f_number", "iso", "focal_length",
                "subject_distance", "make", "model"]


@dataclass(frozen=True)
class Rules:
    min_frames: int = 3
    max_frames: int = 9  # the longest exposure bracket cameras shoot; focus stacks may be longer
    max_gap_s: float = 2.0
    max_span_s: float = 10.0
    min_step_ev: float = 0.3
    step_tolerance: float = 0.1
    max_stack_frames: int = 200

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_RULES = Rules()


def read_exif(paths: Sequence, workers: int | None = None) -> pd.DataFrame:
    """:data:`EXIF_COLUMNS` of each file (header only; NaN/None where unknown), in the order given."""
    from concurrent.futures import ThreadPoolExecutor

    from iqc_dagster.core import names, raw
    from iqc_dagster.core.files import cpu_workers

    def one(p):
        try:
            return asdict(raw.exif_fields(names.real_path(str(p))))
        except Exception:
            return {}

    with ThreadPoolExecutor(max_workers=workers or cpu_workers()) as pool:
        rows = list(pool.map(one, list(paths)))
    return pd.DataFrame(rows, columns=EXIF_COLUMNS)


def candidates(captured_at, rules: Rules = DEFAULT_RULES) -> np.ndarray:
    """Bool mask of the photos that could be in a sequence: in a run of at least ``min_frames`` capture
    times each within ``max_gap_s`` of the previous. Only these need their EXIF read (a header parse
    each), so an album of 20,000 holiday snaps costs nothing here."""
    ts = pd.to_datetime(pd.Series(list(captured_at)), errors="coerce")
    n = len(ts)
    out = np.zeros(n, dtype=bool)
    ok = ts.notna().to_numpy()
    if ok.sum() < rules.min_frames:
        return out
    idx = np.flatnonzero(ok)
    secs = (ts[ok] - ts[ok].min()).dt.total_seconds().to_numpy(float)
    order = np.argsort(secs, kind="stable")
    s = secs[order]
    breaks = np.flatnonzero(np.diff(s) > rules.max_gap_s) + 1
    for run in np.split(np.arange(s.size), breaks):
        if run.size >= rules.min_frames:
            out[idx[order[run]]] = True
    return out


def _num(values, n) -> np.ndarray:
    return pd.to_numeric(pd.Series(list(values) if values is not None else [None] * n), errors="coerce").to_numpy(float)


def _light(t: np.ndarray, fn: np.ndarray, iso: np.ndarray) -> np.ndarray:
    """Light EV, log2(t * ISO / N^2) (NaN where unknown)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        iso_ = np.where(np.isfinite(iso) & (iso > 0), iso, 100.0)
        fn_ = np.where(np.isfinite(fn) & (fn > 0), fn, 1.0)
        return np.where(np.isfinite(t) & (t > 0), np.log2(t * iso_ / 100.0 / fn_ ** 2), np.nan)


def _even_steps(values: np.ndarray, rules: Rules) -> bool:
    if values.size < rules.min_frames or not np.isfinite(values).all():
        return False
    v = np.sort(values)
    steps = np.diff(v)
    if steps.min() < rules.min_step_ev:
        return False
    return float(steps.max() - steps.min()) <= rules.step_tolerance


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a))
    return a == b


def find_sequences(df: pd.DataFrame, rules: Rules = DEFAULT_RULES, *, name_column: str = "path",
                   ) -> list[tuple[list[int], str]]:
    """``[(row positions, kind)]`` of the exposure brackets and focus stacks in ``df`` (a row per photo:
    ``name_column``, :data:`EXIF_COLUMNS`, optionally ``width``/``height``). A photo is in at most one."""
    n = len(df)
    if n < rules.min_frames or "captured_at" not in df.columns:
        return []
    ts = pd.to_datetime(df["captured_at"], errors="coerce")
    secs = np.full(n, np.nan)
    ok = ts.notna().to_numpy()
    if ok.sum() < rules.min_frames:
        return []
    secs[ok] = (ts[ok] - ts[ok].min()).dt.total_seconds().to_numpy(float)
    col = {c: (df[c].tolist() if c in df.columns else [None] * n) for c in EXIF_COLUMNS + ["width", "height"]}
    bias, t, fn, iso, focal = (_num(col[c], n) for c in
                               ("exposure_bias", "exposure_time", "f_number", "iso", "focal_length"))
    light = _light(t, fn, iso)
    dist = _num(col["subject_distance"], n)
    setting = list(zip(t, fn, iso, bias))
    frame = [tuple(col[c][i] for c in ("make", "model", "width", "height")) + (focal[i],) for i in range(n)]
    names = df[name_column].astype(str).to_numpy() if name_column in df.columns else np.arange(n).astype(str)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((names[idx], secs[idx]))]

    # runs: consecutive frames close in time with the same framing
    runs: list[list[int]] = []
    for i in order.tolist():
        if runs and secs[i] - secs[runs[-1][-1]] <= rules.max_gap_s and all(
                _same(a, b) for a, b in zip(frame[i], frame[runs[-1][-1]])):
            runs[-1].append(i)
        else:
            runs.append([i])

    out: list[tuple[list[int], str]] = []
    for run in runs:
        k = 0
        while k <= len(run) - rules.min_frames:
            found = None
            # exposure bracket: the longest window from k whose values step evenly
            for m in range(min(len(run), k + rules.max_frames), k + rules.min_frames - 1, -1):
                w = run[k:m]
                if secs[w[-1]] - secs[w[0]] > rules.max_span_s:
                    continue
                b = bias[w]
                values = b if np.isfinite(b).all() and np.unique(np.round(b, 3)).size > 1 else light[w]
                if _even_steps(values, rules):
                    found = (w, "bracket")
                    break
            if found is None:  # focus stack: same exposure, distance moving one way at every frame
                m = k + 1
                while (m < len(run) and m - k < rules.max_stack_frames and all(
                        _same(a, b) for a, b in zip(setting[run[m]], setting[run[k]]))):
                    m += 1
                w = run[k:m]
                d = dist[w]
                if len(w) >= rules.min_frames and np.isfinite(d).all():
                    steps = np.diff(d)
                    # the longest monotonic prefix
                    sign = np.sign(steps[0]) if steps.size and steps[0] != 0 else 0
                    j = 0
                    while sign != 0 and j < steps.size and np.sign(steps[j]) == sign:
                        j += 1
                    if j + 1 >= rules.min_frames:
                        found = (w[:j + 1], "focus_stack")
            if found is None:
                k += 1
            else:
                out.append(found)
                k += len(found[0])
    return out


__all__ = ["DEFAULT_RULES", "EXIF_COLUMNS", "KINDS", "Rules", "candidates", "find_sequences", "read_exif"]

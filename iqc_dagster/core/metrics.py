"""Proxy metrics of one ranked album: cheap numbers that say whether a ranking is plausible without
human labels (definitions in docs/evaluation.md, "Proxy metrics").

* ``n_ranked``: photos in the ranked table; ``n_unreadable``: photos skipped as unreadable (given by
  the caller: they are not in the ranked table).
* ``score_std``: population standard deviation (ddof = 0) of ``final_score``. Near 0 means the
  ranking barely separates the photos.
* ``score_mean``: mean ``final_score``.
* ``duplicate_fraction``: share of ranked photos that are *non-best* members of a near-duplicate or
  burst group (``is_best_in_group`` False): the share a user could set aside. None without groups.
* ``n_groups``: groups of two or more photos (singletons are not counted); ``n_grouped_photos``:
  photos in those groups. None without groups.
* ``sharpness_corr``: Spearman rank correlation between ``sharpness_norm`` and ``aesthetic`` over the
  photos that have both, when at least 3 do and neither is constant; else None. Spearman (Pearson on
  average ranks) because both scores are monotone but non-linear calibrations (``sharpness_norm`` is a
  clipped ramp with many ties at 0 and 1): only the agreement in order is meaningful.

Every value is a plain ``int``, ``float`` (rounded to 6 digits) or ``None``: the dict is
JSON-serialisable as it is, for Dagster metadata, DuckDB and ``iqc evaluate``. No Dagster import here.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MIN_CORR_PAIRS = 3
METRIC_KEYS = ["n_ranked", "n_unreadable", "score_mean", "score_std", "duplicate_fraction", "n_groups",
               "n_grouped_photos", "sharpness_corr", "sharpness_corr_n"]


def _num(series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype(float)


def _round(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


def spearman(x, y) -> tuple[float | None, int]:
    """Spearman correlation of the pairs where both are finite (ties get average ranks) and the
    number of such pairs. None when fewer than :data:`MIN_CORR_PAIRS` or either side is constant."""
    a, b = _num(pd.Series(list(x))), _num(pd.Series(list(y)))
    ok = np.isfinite(a.to_numpy()) & np.isfinite(b.to_numpy())
    n = int(ok.sum())
    if n < MIN_CORR_PAIRS:
        return None, n
    ra = a[ok].rank(method="average").to_numpy()
    rb = b[ok].rank(method="average").to_numpy()
    if np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return None, n
    return float(np.corrcoef(ra, rb)[0, 1]), n


def proxy_metrics(ranked: pd.DataFrame, n_unreadable: int = 0) -> dict:
    """The proxy metrics of a ranked table (with or without the group columns of
    :func:`iqc_dagster.core.dedup.group_photos`). See the module docstring for each key."""
    n = int(len(ranked))
    scores = _num(ranked["final_score"]) if "final_score" in ranked.columns else pd.Series(dtype=float)
    finite = scores[np.isfinite(scores.to_numpy())] if len(scores) else scores
    out: dict = {"n_ranked": n, "n_unreadable": int(n_unreadable)}
    out["score_mean"] = _round(finite.mean()) if len(finite) else None
    out["score_std"] = _round(finite.std(ddof=0)) if len(finite) else None

    if {"group_id", "group_size", "is_best_in_group"} <= set(ranked.columns) and n:
        best = ranked["is_best_in_group"].map(_truthy)
        size = _num(ranked["group_size"]).fillna(1)
        out["duplicate_fraction"] = _round(float((~best).sum()) / n)
        multi = ranked[size.to_numpy() > 1]
        out["n_groups"] = int(multi["group_id"].nunique())
        out["n_grouped_photos"] = int(len(multi))
    else:
        out["duplicate_fraction"] = None
        out["n_groups"] = None
        out["n_grouped_photos"] = None

    if {"sharpness_norm", "aesthetic"} <= set(ranked.columns):
        corr, pairs = spearman(ranked["sharpness_norm"], ranked["aesthetic"])
        out["sharpness_corr"], out["sharpness_corr_n"] = _round(corr), pairs
    else:
        out["sharpness_corr"], out["sharpness_corr_n"] = None, 0
    return {k: out[k] for k in METRIC_KEYS}


def _truthy(v) -> bool:
    """is_best_in_group as read back from a CSV: True/False, 1/0, "True"/"false"; missing = True."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return True
    if isinstance(v, str):
        return v.strip().lower() not in ("false", "0", "no", "")
    return bool(v)

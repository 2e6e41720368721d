"""Per-photo reasons: a short text saying what lifts a photo and what sinks it in the ranking.

``"+ sharp; + face; - 12% of highlights clipped"``: lifts first (``+``), then sinks (``-``), at most
:data:`MAX_EACH` of each, the strongest first. Read from one row of the ranked table:

* calibrated scores (``*_norm`` in [0, 1], higher is better, ``aesthetic``): a score at or below its
  *low* threshold is a sink, at or above its *high* threshold a lift. Known scores have readable words
  (:data:`SCORE_WORDS`); any other ``*_norm`` column (a feature added later) gets ``"low <name>"`` /
  ``"high <name>"`` with the default thresholds, so new scores need no change here;
* raw measurements where they say more than the score: ``clipped_highlights`` ("12% of highlights
  clipped"), ``clipped_shadows``, ``median_luma`` ("dark", "very bright", unless ``exposure_norm`` is
  at least 0.6), ``face_count`` ("2 faces"); "well exposed" is left out next to any of these;
* ``no_detail`` (a blank or tiny frame, ranked last): that reason alone;
* faces: "eyes closed" (``eyes_open`` low, or ``eyes_closed_faces``), "eyes closed (1 of 3 faces)"
  when several faces were judged; "face out of focus" (``face_sharpness_norm``);
* groups (:mod:`iqc_dagster.core.dedup`): a non-best member gets "duplicate of X, lower score" (or
  "burst with X, ..."; "eyes closed" / "face out of focus" instead of "lower score" when that is why
  it was passed over); a group's best pick gets "best of N similar"; every frame of an
  exposure bracket or focus stack gets "one of N frames of an exposure bracket" (never a sink).

Missing columns and missing values are skipped: any ranked CSV works. No Dagster import here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from iqc_dagster.core.brackets import KINDS

REASONS_COLUMN = "reasons"
MAX_EACH = 3
DEFAULT_LOW = 0.2
DEFAULT_HIGH = 0.9

#: Raw-measurement thresholds (fractions of pixels / normalised luminance).
CLIPPED_HIGHLIGHTS = 0.05  # >= 5% of pixels blown
CLIPPED_SHADOWS = 0.10  # >= 10% of pixels crushed to black
DARK_MEDIAN = 0.18
BRIGHT_MEDIAN = 0.85
#: "dark" / "very bright" only when the exposure score (if any) is below this: otherwise the score
#: judged the key acceptable (a deliberate low-key or high-key photo) and the words would contradict it.
KEY_TRUSTED = 0.6


@dataclass(frozen=True)
class Words:
    low: str | None  # sink text when the score is <= low_at (None: never a sink)
    high: str | None  # lift text when the score is >= high_at (None: never a lift)
    low_at: float = DEFAULT_LOW
    high_at: float = DEFAULT_HIGH


#: Readable words for the known scores. Any other ``*_norm`` column falls back to "low/high <name>".
SCORE_WORDS: dict[str, Words] = {
    "sharpness_norm": Words("soft focus", "sharp", 0.35, 0.75),
    "exposure_norm": Words("poorly exposed", "well exposed", 0.25, 0.85),
    "contrast_norm": Words("flat contrast", "good contrast", 0.2, 0.9),
    "noise_norm": Words("noisy", None, 0.4, 1.1),
    "blockiness_norm": Words("JPEG blocking", None, 0.4, 1.1),
    "colorfulness_norm": Words("dull colours", "colourful", 0.15, 0.85),
    "aesthetic": Words("unappealing (CLIP)", "appealing (CLIP)", 0.3, 0.7),
    "face_sharpness_norm": Words("face out of focus", None, 0.35, 1.1),
    "eyes_open": Words("eyes closed", None, 0.3, 1.1),  # worded by _eyes_closed_text
}
#: ``eyes_open`` at or below this (or any face counted in ``eyes_closed_faces``) says "eyes closed".
EYES_CLOSED = 0.3
#: Below this sharpness score "soft focus" becomes "blurry".
BLURRY = 0.15


def finite(row: Mapping, key: str) -> float | None:
    """``row[key]`` as a finite float, else None (missing, NaN, not a number); shared with the XMP writer."""
    v = row.get(key)
    if v is None or isinstance(v, bool):
        return None if v is None else float(v)
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _s(row: Mapping, key: str) -> str | None:
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    s = str(v).strip()
    return s or None


def _truthy(v) -> bool | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, str):
        return v.strip().lower() not in ("false", "0", "no", "")
    return bool(v)


def _readable(column: str) -> str:
    name = re.sub(r"_norm$", "", column)
    return name.replace("_", " ").strip() or column


def lifts_and_sinks(row: Mapping) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """(strength, text) lifts and sinks of one row, unsorted. Strength orders them: group facts
    first (strength 10), then by how far the value is past its threshold."""
    lifts: list[tuple[float, str]] = []
    sinks: list[tuple[float, str]] = []
    specific_exposure = False

    # a blank or tiny frame (core.dedup.NO_DETAIL): nothing else about it matters
    blank = _s(row, "no_detail")
    if blank:
        return [], [(20.0, blank)]

    # groups
    size = finite(row, "group_size")
    best = _truthy(row.get("is_best_in_group"))
    kind = _s(row, "group_kind")
    if size is not None and size > 1 and kind in KINDS:  # kept whole (core/brackets.py)
        what = "exposure bracket" if kind == "bracket" else "focus stack"
        lifts.append((10.0, f"one of {int(size)} frames of an {what}" if kind == "bracket"
                      else f"one of {int(size)} frames of a {what}"))
    elif size is not None and size > 1 and best is not None:
        if best:
            lifts.append((10.0, f"best of {int(size)} similar"))
        else:
            other = _s(row, "duplicate_of") or "another photo"
            kind = "burst with" if _s(row, "group_kind") == "burst" else "duplicate of"
            sinks.append((10.0, f"{kind} {other}, {_passed_over_because(row)}"))

    # raw measurements that say more than the exposure score
    hi = finite(row, "clipped_highlights")
    if hi is not None and hi >= CLIPPED_HIGHLIGHTS:
        sinks.append((1.0 + hi, f"{_pct(hi)} of highlights clipped"))
        specific_exposure = True
    lo = finite(row, "clipped_shadows")
    if lo is not None and lo >= CLIPPED_SHADOWS:
        sinks.append((1.0 + lo, f"{_pct(lo)} of shadows crushed"))
        specific_exposure = True
    med = finite(row, "median_luma")
    exposure = finite(row, "exposure_norm")
    if exposure is not None and exposure >= KEY_TRUSTED:
        med = None  # the exposure score accepts this key (a low-key or high-key photo): no "dark"
    if med is not None and med <= DARK_MEDIAN:
        sinks.append((1.0 + (DARK_MEDIAN - med) * 3, "dark"))
        specific_exposure = True
    elif med is not None and med >= BRIGHT_MEDIAN:
        sinks.append((1.0 + (med - BRIGHT_MEDIAN) * 3, "very bright"))
        specific_exposure = True

    # faces
    faces = finite(row, "face_count")
    present = finite(row, "face_present")
    if faces is not None and faces >= 2:
        lifts.append((0.5, f"{int(faces)} faces"))
    elif (faces is not None and faces >= 1) or (present is not None and present >= 0.5):
        lifts.append((0.5, "face"))

    # eyes and face focus (core.features.eyes / face_focus): judged by the worst prominent face
    eyes_text = _eyes_closed_text(row)
    if eyes_text:
        sinks.append((2.0, eyes_text))

    # calibrated scores, known and unknown
    for col in row.keys():
        if not isinstance(col, str) or not (col.endswith("_norm") or col == "aesthetic"):
            continue
        v = finite(row, col)
        if v is None:
            continue
        if col == "eyes_open":
            continue  # said above, with the number of faces
        w = SCORE_WORDS.get(col) or Words(f"low {_readable(col)}", f"high {_readable(col)}")
        if w.low and v <= w.low_at:
            if col == "exposure_norm" and specific_exposure:
                continue
            text = "blurry" if col == "sharpness_norm" and v <= BLURRY else w.low
            sinks.append((w.low_at - v + 0.01, text))
        elif w.high and v >= w.high_at:
            if col == "exposure_norm" and specific_exposure:
                continue  # "well exposed" next to "12% of highlights clipped" would contradict itself
            lifts.append((v - w.high_at + 0.01, w.high))
    return lifts, sinks


def _eyes_closed_text(row: Mapping) -> str | None:
    """"eyes closed", with "(1 of 3 faces)" when the photo has several judged faces."""
    score = finite(row, "eyes_open")
    closed = finite(row, "eyes_closed_faces")
    judged = finite(row, "eyes_judged_faces")
    if not ((closed is not None and closed >= 1) or (score is not None and score <= EYES_CLOSED)):
        return None
    n = int(max(1, closed or 1))
    if judged is not None and judged >= 2:
        return f"eyes closed ({n} of {int(judged)} faces)"
    return "eyes closed"


def _passed_over_because(row: Mapping) -> str:
    """Why a group member is not the best pick: shut eyes or a soft face (the pick's rule), else its
    lower score."""
    if _eyes_closed_text(row):
        return "eyes closed"
    face = finite(row, "face_sharpness_norm")
    if face is not None and face <= SCORE_WORDS["face_sharpness_norm"].low_at:
        return "face out of focus"
    return "lower score"


def _pct(x: float) -> str:
    p = 100.0 * x
    return f"{p:.0f}%" if p >= 1 else "<1%"


def reasons_for(row: Mapping, max_each: int = MAX_EACH) -> str:
    """``"+ sharp; + face; - 12% of highlights clipped"`` for one row (a dict or a pandas row);
    ``""`` when nothing stands out."""
    lifts, sinks = lifts_and_sinks(row)
    parts = [f"+ {t}" for _, t in sorted(lifts, key=lambda x: -x[0])[:max_each]]
    parts += [f"- {t}" for _, t in sorted(sinks, key=lambda x: -x[0])[:max_each]]
    return "; ".join(parts)


def photo_reasons(df: pd.DataFrame, max_each: int = MAX_EACH) -> pd.Series:
    """The reasons of every row of a ranked table, as a string Series aligned with ``df``."""
    records = df.to_dict(orient="records")
    return pd.Series([reasons_for(r, max_each) for r in records], index=df.index, name=REASONS_COLUMN,
                     dtype=object)


def add_reasons(df: pd.DataFrame, max_each: int = MAX_EACH) -> pd.DataFrame:
    """A copy of ``df`` with a ``reasons`` column (replacing an existing one)."""
    out = df.copy()
    out[REASONS_COLUMN] = photo_reasons(df, max_each)
    return out

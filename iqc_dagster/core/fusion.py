"""Fuse per-feature scores into ``final_score`` with weights, redistributing missing features' weight."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from iqc_dagster.core.features import FEATURES

#: The seed's fusion weights. Keys are feature names; "aesthetic" is the CLIP score.
DEFAULT_WEIGHTS: dict[str, float] = {
    "aesthetic": 0.35,
    "sharpness": 0.35,
    "exposure": 0.20,
    "contrast": 0.10,
    "faces": 0.05,
    # issue 14: the worst prominent face's eyes and focus; NaN without a face, so a photo without faces
    # keeps the seed's weights (redistributed per photo) and is neither rewarded nor punished
    "eyes": 0.10,
    "face_focus": 0.10,
}

#: Scores that can only lower a photo: each enters the weighted mean as min(score, the photo's mean
#: of the other scores), so open eyes and a sharp face do not lift a portrait above a photo without a
#: face (where these scores are NaN and drop out), while shut eyes or a soft face pull it down.
PENALTY_ONLY: frozenset[str] = frozenset({"eyes", "face_focus"})

#: Score column of each weight key in the scores table / ranked CSV.
AESTHETIC_COLUMN = "aesthetic"


def score_columns() -> dict[str, str]:
    """Weight key → score column, for every score that can take part in fusion."""
    cols = {"aesthetic": AESTHETIC_COLUMN}
    cols.update({name: f.column for name, f in FEATURES.items()})
    return cols


@dataclass(frozen=True)
class Weights:
    values: dict[str, float]
    source: str = "default"  # "default" or "tuned:<study>" ...

    @property
    def weights_id(self) -> str:
        blob = json.dumps({"values": self.values, "source": self.source}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def to_json(self) -> str:
        return json.dumps({"values": self.values, "source": self.source, "weights_id": self.weights_id},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Weights":
        d = json.loads(text)
        return cls(values={k: float(v) for k, v in d["values"].items()}, source=d.get("source", "?"))


def validate_weights(values: Mapping[str, float]) -> dict[str, float]:
    known = score_columns()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown weight(s) {unknown}; known: {sorted(known)}")
    bad = {k: v for k, v in values.items() if not (math.isfinite(v) and v >= 0)}
    if bad:
        raise ValueError(f"weights must be finite and >= 0: {bad}")
    if sum(values.values()) <= 0:
        raise ValueError("at least one weight must be positive")
    return {k: float(v) for k, v in values.items()}


@dataclass
class FusionResult:
    final_score: pd.Series
    effective_weights: dict[str, float]  # after redistribution, summing to 1 (over available scores)
    unavailable: list[str] = field(default_factory=list)  # weight keys with no value for any photo
    notes: list[str] = field(default_factory=list)


def fuse(scores: pd.DataFrame, weights: Mapping[str, float]) -> FusionResult:
    """Weighted mean of the available [0, 1] scores of each photo.

    A score missing for a photo (NaN) or for the whole album (e.g. ``aesthetic`` when CLIP is off)
    drops out and its weight is spread over the others in proportion to their weights, so
    ``final_score`` stays in [0, 1] and comparable within the album. A :data:`PENALTY_ONLY` score
    counts at most as much as the photo's mean of the other scores: it can lower a photo, never lift it.
    """
    cols = score_columns()
    used = {k: w for k, w in weights.items() if w > 0}
    unavailable = [k for k in used if cols[k] not in scores.columns or scores[cols[k]].isna().all()]
    avail = {k: w for k, w in used.items() if k not in unavailable}
    notes = []
    if not avail:
        raise ValueError("no weighted score is available for any photo; nothing to rank by")
    if unavailable:
        notes.append(
            f"{', '.join(unavailable)} unavailable: weight {sum(used[k] for k in unavailable):.2f} "
            f"redistributed over {', '.join(avail)}"
        )
    num = np.zeros(len(scores))
    den = np.zeros(len(scores))
    for k, w in avail.items():
        if k in PENALTY_ONLY:
            continue
        v = scores[cols[k]].to_numpy(dtype=float)
        ok = np.isfinite(v)
        num += np.where(ok, w * v, 0.0)
        den += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        others = np.where(den > 0, num / den, np.nan)
    for k, w in avail.items():
        if k not in PENALTY_ONLY:
            continue
        v = scores[cols[k]].to_numpy(dtype=float)
        v = np.where(np.isfinite(others), np.minimum(v, others), v)  # NaN (no face) stays NaN
        ok = np.isfinite(v)
        num += np.where(ok, w * v, 0.0)
        den += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        final = np.where(den > 0, num / den, np.nan)
    total = sum(avail.values())
    eff = {k: w / total for k, w in avail.items()}
    partial = int(np.sum(den < total - 1e-12))
    if partial:
        notes.append(f"{partial} photo(s) miss some scores; their weights were redistributed per photo")
    return FusionResult(pd.Series(final, index=scores.index, name="final_score"), eff, unavailable, notes)


def rank(scores: pd.DataFrame, final: pd.Series) -> pd.DataFrame:
    """Sort by ``final_score`` descending (ties broken by path for a stable order) and add ``rank`` 1..N."""
    out = scores.copy()
    out["final_score"] = final
    out = out.sort_values(["final_score", "path"], ascending=[False, True], na_position="last",
                          kind="mergesort").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out

"""The registry of per-photo quality features: one module per feature, one ``register`` call each.

A feature has two halves:

* ``measure(decoded) -> dict[str, float]`` — raw measurements taken from the shared decoded pixels
  (:class:`iqc_dagster.core.imaging.Decoded`). These are cached in DuckDB under
  ``(content_hash, feature, version)``; bump ``version`` whenever the measurement changes.
* ``score(measures) -> float`` — a *calibrated, absolute* mapping of those measurements to a quality
  score in [0, 1] where higher is better. It never looks at the other photos of the album, so adding
  one photo (an outlier included) can never reorder the others. A score may also read the measurements
  of the features named in ``inputs`` (same photo), e.g. sharpness discounts measured noise; measurement
  keys are unique across features, so the dicts are merged.

Adding a new score means writing one module that calls :func:`register` and importing it below
(modelled on IQA-PyTorch's ``create_metric`` registry).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from iqc_dagster.core.imaging import DECODE_VERSION, Decoded

Measures = dict[str, float]


@dataclass(frozen=True)
class Feature:
    name: str  # registry key, also the fusion-weight key ("sharpness")
    column: str  # name of the normalised score column in the ranked CSV ("sharpness_norm")
    version: str  # cache key: bump whenever ``measure`` changes
    measure: Callable[[Decoded], Measures]
    score: Callable[[Mapping[str, float]], float]
    description: str
    higher_is_better: bool = True  # of the score; always True for registered scores
    inputs: tuple[str, ...] = ()  # other features whose measurements ``score`` also reads (same photo)

    @property
    def cache_version(self) -> str:
        """Version under which measurements are cached: the feature's own plus the decode settings."""
        return f"{self.version}+{DECODE_VERSION}"


FEATURES: dict[str, Feature] = {}


def register(name: str, *, column: str, version: str, score: Callable[[Mapping[str, float]], float],
             description: str, inputs: Iterable[str] = ()
             ) -> Callable[[Callable[[Decoded], Measures]], Callable[[Decoded], Measures]]:
    """Decorator registering ``measure`` as feature ``name``."""

    def deco(measure: Callable[[Decoded], Measures]) -> Callable[[Decoded], Measures]:
        if name in FEATURES:
            raise ValueError(f"feature {name!r} registered twice")
        FEATURES[name] = Feature(name=name, column=column, version=version, measure=measure,
                                 score=score, description=description, inputs=tuple(inputs))
        return measure

    return deco


def create_feature(name: str) -> Feature:
    """The feature called ``name``; a clear error lists the known ones."""
    try:
        return FEATURES[name]
    except KeyError:
        raise KeyError(f"unknown feature {name!r}; known: {', '.join(sorted(FEATURES))}") from None


def score_photo(measures_by_feature: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Calibrated [0, 1] score per feature for one photo; NaN where the feature was not measured."""
    out: dict[str, float] = {}
    for f in FEATURES.values():
        m = measures_by_feature.get(f.name)
        if not m:
            out[f.column] = math.nan
            continue
        if f.inputs:  # own measurements last, so they win (keys are unique anyway)
            merged: dict[str, float] = {}
            for other in f.inputs:
                merged.update(measures_by_feature.get(other) or {})
            merged.update(m)
            m = merged
        s = float(f.score(m))
        out[f.column] = min(1.0, max(0.0, s)) if math.isfinite(s) else math.nan
    return out


def ramp(x: float, lo: float, hi: float) -> float:
    """Linear map of ``x`` from [lo, hi] onto [0, 1], clipped. ``lo > hi`` gives a falling ramp."""
    if not math.isfinite(x):
        return math.nan
    t = (x - lo) / (hi - lo)
    return min(1.0, max(0.0, t))


# Importing the modules registers them; the order here is the column order in outputs.
from iqc_dagster.core.features import sharpness, exposure, contrast, faces  # noqa: E402,F401
from iqc_dagster.core.features import noise, blockiness, colorfulness  # noqa: E402,F401
from iqc_dagster.core.features import eyes, face_focus  # noqa: E402,F401

__all__ = ["FEATURES", "Feature", "create_feature", "register", "score_photo", "ramp"]

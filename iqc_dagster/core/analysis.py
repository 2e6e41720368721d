"""Decode each photo once and run every pending feature on the same pixels, in a thread pool.

Decoding (libjpeg) and OpenCV release the GIL, so threads overlap well on a small machine. Results come
back in batches so the caller can write each batch to the database as it goes: memory stays flat with
album size and a run killed mid-way keeps the batches already written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from iqc_dagster.core import features as feat
from iqc_dagster.core import imaging


@dataclass(frozen=True)
class PhotoTask:
    content_hash: str
    path: Path  # absolute path of one file with this content
    rel_path: str  # path inside the album, for messages
    features: tuple[str, ...]  # feature names to measure


@dataclass
class Batch:
    feature_rows: list[tuple[str, str, str, dict]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # content_hash -> reason
    done: int = 0  # tasks finished so far, over all batches
    total: int = 0


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _work(task: PhotoTask):
    try:
        decoded = imaging.decode(task.path)
    except imaging.UnreadableImage as exc:
        return task, None, str(exc)
    rows = []
    for name in task.features:
        f = feat.create_feature(name)
        try:
            measures = f.measure(decoded)
        except Exception as exc:  # a feature bug must not lose the other features or photos
            return task, None, f"feature {name} failed: {type(exc).__name__}: {exc}"
        rows.append((task.content_hash, f.name, f.cache_version, measures))
    return task, rows, None


def analyze(tasks: Iterable[PhotoTask], *, batch_size: int = 64, workers: int | None = None,
            ) -> Iterator[Batch]:
    """Yield one :class:`Batch` per ``batch_size`` photos; order of photos is preserved."""
    tasks = list(tasks)
    total = len(tasks)
    done = 0
    with ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="iqc-decode") as pool:
        for start in range(0, total, batch_size):
            chunk = tasks[start:start + batch_size]
            batch = Batch(total=total)
            for task, rows, err in pool.map(_work, chunk):
                if err is not None:
                    batch.errors[task.content_hash] = err
                else:
                    batch.feature_rows.extend(rows)
            done += len(chunk)
            batch.done = done
            yield batch


def throttled(report: Callable[[str], None], every_s: float = 5.0, label: str = "photos"):
    """A ``progress(done, total)`` callback that reports at most every ``every_s`` seconds (and at the end)."""
    import time

    last = [0.0]

    def progress(done: int, total: int) -> None:
        t = time.monotonic()
        if done >= total or t - last[0] >= every_s:
            last[0] = t
            pct = 100.0 * done / total if total else 100.0
            report(f"{label}: {done}/{total} ({pct:.0f}%)")

    return progress

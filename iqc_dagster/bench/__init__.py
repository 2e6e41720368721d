"""Measuring iqc, not running it: the ranking-quality benchmark and the speed tooling.

* :mod:`.benchmark`  — ranking quality on real photos with graded distortions (``iqc benchmark``, the
  ``ranking_quality_benchmark`` asset); also the synthetic preference pairs of ``iqc tune``
* :mod:`.degrade`    — the graded distortions (blur, noise, JPEG, exposure, contrast) it applies
* :mod:`.perf`       — speed and memory on synthetic 12 MP photos (``iqc perf``)
* :mod:`.scenario`   — one ``iqc perf`` scenario, run in its own process (``python -m iqc_dagster.bench.scenario``)
* :mod:`.clip_speed` — CLIP embedding throughput (``python -m iqc_dagster.bench.clip_speed``)
* :mod:`.dng`        — small valid DNG files (a mosaic and an optional preview) for the RAW tests and
  ``iqc perf --scenarios raw``

Pure Python like :mod:`iqc_dagster.core` (no Dagster import, except the scenario, which runs the real
asset graph through :mod:`iqc_dagster.runner`). Ranking never imports this package; only ``iqc tune``'s
synthetic preference pairs (:func:`iqc_dagster.core.tuning.synthetic_frame`) borrow the benchmark's
photos and distortions.
"""

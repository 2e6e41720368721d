"""Progress reporting of long analyses (pure Python, a fake clock)."""

from iqc_dagster.core import analysis


def test_progress_reports_every_few_seconds_with_rate_and_time_left():
    now = [100.0]
    lines = []
    progress = analysis.throttled(lines.append, every_s=5.0, label="analysis a", clock=lambda: now[0])
    now[0] = 102.0
    progress(64, 1000)  # 2 s in: too soon to report
    assert lines == []
    now[0] = 110.0
    progress(200, 1000)  # 10 s in: 20 photos/s, 800 left -> 40 s
    assert lines == ["analysis a: 200/1000 (20%), 20.0/s, about 40 s left"]
    now[0] = 112.0
    progress(240, 1000)  # 2 s after the last line: quiet
    assert len(lines) == 1
    now[0] = 1100.0
    progress(1000, 1000)  # the end is always reported, without a time left
    assert lines[-1] == "analysis a: 1000/1000 (100%), 1.0/s"


def test_remaining_time_reads_naturally():
    assert analysis._duration(42.4) == "42 s"
    assert analysis._duration(600) == "10 min"
    assert analysis._duration(3900) == "1 h 05 min"

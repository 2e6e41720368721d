"""Writing output files safely (never a half-written file, normal permissions), and how many threads
the file-bound work of a step may use."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a short temporary name: ".<name>.XXXX.tmp" of a 240-byte name would pass the 255-byte limit
    fd, tmp = tempfile.mkstemp(prefix=".iqc-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs are for reading by anyone
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def cpu_workers() -> int:
    """Threads for a step's per-photo work: one per core, at most 4 (beyond that the disk and the
    memory bandwidth, not the cores, are the limit on the machines measured, docs/benchmarks.md)."""
    return max(1, min(4, os.cpu_count() or 1))

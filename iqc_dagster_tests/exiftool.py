"""ExifTool (Debian's libimage-exiftool-perl, installed by .ci/run) as the independent reader and writer
of XMP sidecars in the tests: what iqc writes must read back in a tool that shares no code with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest


def require() -> str:
    exe = shutil.which("exiftool")
    if exe is None:
        msg = "exiftool not installed (Debian/Ubuntu: apt-get install libimage-exiftool-perl; macOS: brew install exiftool)"
        if os.environ.get("CI"):
            pytest.fail(msg)  # CI installs it: a missing reader must not pass as skipped
        pytest.skip(msg)
    return exe


def read(path) -> dict:
    """Every tag of ``path`` as ExifTool reads it, structures kept (``-struct``), group names (``-G1``)."""
    out = subprocess.run([require(), "-j", "-struct", "-G1", "-n", str(path)], capture_output=True, text=True,
                         timeout=60, check=True)
    tags = json.loads(out.stdout)[0]
    return {k: v for k, v in tags.items() if not k.startswith(("System:", "ExifTool:", "File:")) and k != "SourceFile"}


def write(path, *assignments: str) -> None:
    """Edit ``path`` in place as another program would (``-XMP-xmp:Rating=5``)."""
    subprocess.run([require(), "-overwrite_original", "-q", *assignments, str(path)], capture_output=True,
                   text=True, timeout=60, check=True)

"""Shared fixtures: real photos from installed packages, a temporary photo root, DuckDB under tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iqc_dagster.core.config import Settings
from iqc_dagster_tests.tiny_clip import build_tiny_clip

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "albums"


def real_photo(name: str = "astronaut") -> np.ndarray:
    """A real photograph as H x W x 3 uint8 (scikit-image / matplotlib sample data)."""
    import skimage.data

    if name == "grace_hopper":
        import matplotlib.cbook

        return np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    img = getattr(skimage.data, name)()
    return img[0] if isinstance(img, tuple) else img


def save_jpeg(img: np.ndarray, path: Path, quality: int = 92, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format="JPEG", quality=quality, **kw)
    return path


@pytest.fixture
def photo_root(tmp_path) -> Path:
    """A photo root with two small albums copied from the shipped samples."""
    root = tmp_path / "photos"
    for album, names in {"portraits": ["astronaut.jpg", "astronaut_blurred.jpg", "grace_hopper.jpg",
                                       "grace_hopper_dark.jpg"],
                         "travel": ["coffee.jpg", "coffee_blurred.jpg", "chelsea.jpg", "flower_rotated.jpg"]}.items():
        (root / album).mkdir(parents=True)
        for n in names:
            shutil.copy2(SAMPLES / album / n, root / album / n)
    return root


@pytest.fixture
def settings(tmp_path, photo_root) -> Settings:
    return Settings(photo_root=str(photo_root), db_path=str(tmp_path / "iqc.duckdb"),
                    output_dir=str(tmp_path / "output"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random CLIP saved like a real one (tiny_clip.py), built once per test process."""
    return build_tiny_clip(tmp_path_factory.mktemp("models") / "tinyclip")


def large_photo(name: str) -> np.ndarray:
    """A real camera-sized photograph from Debian's lomiri-wallpapers-16.04/-20.04 (a benchmark reference).

    .ci/run installs the packages, so in CI a missing photo is a failure; elsewhere the test is skipped
    with the command that installs them.
    """
    import os

    from iqc_dagster.bench import benchmark

    try:
        return benchmark.load_reference(name)
    except benchmark.BenchmarkUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))

#!/usr/bin/env python
"""Regenerate the sample albums in data/albums/ from photos that ship inside installed packages.

    .venv/bin/python data/make_samples.py            # needs the dev extras (scikit-image, scikit-learn)

Originals come from scikit-image, matplotlib and scikit-learn (licences in data/README.md); the script
adds clearly worse variants (blurred, noisy, under/over-exposed, flat), a near-duplicate, and one photo
stored sideways with an EXIF orientation tag, so the ranking visibly means something. Deterministic.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from iqc_dagster.bench import degrade  # noqa: E402


def originals() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    import skimage.data
    from sklearn.datasets import load_sample_image

    grace = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    return {
        "astronaut": skimage.data.astronaut(),
        "grace_hopper": grace,
        "coffee": skimage.data.coffee(),
        "chelsea": skimage.data.chelsea(),
        "rocket": skimage.data.rocket(),
        "motorcycle": skimage.data.stereo_motorcycle()[0],
        "china": load_sample_image("china.jpg"),
        "flower": load_sample_image("flower.jpg"),
    }


def save(img: np.ndarray, path: Path, when: dt.datetime, orientation: int = 1) -> None:
    im = Image.fromarray(img)
    exif = Image.Exif()
    stamp = when.strftime("%Y:%m:%d %H:%M:%S")
    exif[0x0132] = stamp  # DateTime
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = stamp  # DateTimeOriginal
    im.save(path, format="JPEG", quality=90, exif=exif.tobytes())


def main(out: Path = HERE / "albums") -> None:
    src = originals()
    t0 = dt.datetime(2024, 6, 1, 10, 0, 0)
    albums = {
        "portraits": [
            ("astronaut", src["astronaut"], 1),
            ("grace_hopper", src["grace_hopper"], 1),
            ("astronaut_blurred", degrade.gaussian_blur(src["astronaut"], 3), 1),
            ("astronaut_noisy", degrade.gaussian_noise(src["astronaut"], 3, seed=1), 1),
            ("astronaut_burst", degrade.crop_resize(src["astronaut"], 0.94, 0.9), 1),
            ("grace_hopper_dark", degrade.underexpose(src["grace_hopper"], 3), 1),
            ("grace_hopper_blown", degrade.overexpose(src["grace_hopper"], 3), 1),
            ("grace_hopper_motion", degrade.motion_blur(src["grace_hopper"], 3), 1),
        ],
        "travel": [
            ("coffee", src["coffee"], 1),
            ("chelsea", src["chelsea"], 1),
            ("rocket", src["rocket"], 1),
            ("motorcycle", src["motorcycle"], 1),
            ("china", src["china"], 1),
            # stored sideways; the EXIF tag (6 = rotate 90° clockwise to view) makes it upright again
            ("flower_rotated", np.rot90(src["flower"], k=1).copy(), 6),
            ("coffee_blurred", degrade.gaussian_blur(src["coffee"], 3), 1),
            ("chelsea_noisy", degrade.gaussian_noise(src["chelsea"], 3, seed=2), 1),
            ("chelsea_copy", degrade.crop_resize(src["chelsea"], 0.95, 0.9), 1),
            ("rocket_dark", degrade.underexpose(src["rocket"], 3), 1),
            ("motorcycle_blown", degrade.overexpose(src["motorcycle"], 3), 1),
            ("china_hazy", degrade.reduce_contrast(src["china"], 3), 1),
            ("china_jpeg", degrade.jpeg(src["china"], 3), 1),
            ("flower_soft", degrade.gaussian_blur(src["flower"], 2), 1),
        ],
    }
    if out.exists():
        shutil.rmtree(out)
    for a, (album, items) in enumerate(albums.items()):
        d = out / album
        d.mkdir(parents=True)
        for i, (name, img, orientation) in enumerate(items):
            save(img, d / f"{name}.jpg", t0 + dt.timedelta(days=a, minutes=i), orientation)
    total = sum(p.stat().st_size for p in out.rglob("*.jpg"))
    n = sum(1 for _ in out.rglob("*.jpg"))
    print(f"wrote {n} photos in {len(albums)} albums under {out} ({total / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

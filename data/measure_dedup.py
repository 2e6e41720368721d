#!/usr/bin/env python
"""Measure pHash distances behind the grouping thresholds in docs/evaluation.md.

    .venv/bin/python data/measure_dedup.py          # needs the dev extras (scikit-image, scikit-learn)

Every variant is saved as a JPEG and read back through ``imaging.decode`` (the pipeline's path), then
hashed with ``dedup.photo_hashes``. Prints, per transformation, the grouping distance
(``dedup.photo_distance``) to the original over all originals (min / median / max), the same for the
whole-frame hash alone (``dedup.hamming`` of ``dedup.phash``), and the distribution of distances
between *different* photos.
"""

from __future__ import annotations

import io
import itertools
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from iqc_dagster.bench import degrade  # noqa: E402
from iqc_dagster.core import dedup, imaging  # noqa: E402


def originals() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    import skimage.data as d
    from sklearn.datasets import load_sample_image

    def rgb(a):
        return np.stack([a] * 3, axis=-1) if a.ndim == 2 else a[..., :3]

    out = {
        "grace_hopper": np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")),
        "china": load_sample_image("china.jpg"),
        "flower": load_sample_image("flower.jpg"),
    }
    for name in ["astronaut", "camera", "coffee", "chelsea", "rocket", "hubble_deep_field",
                 "immunohistochemistry", "retina", "moon", "coins", "page", "text", "brick", "grass",
                 "gravel", "clock", "cell", "colorwheel"]:
        try:
            out[name] = rgb(getattr(d, name)())
        except Exception:  # a sample that needs a download: skip
            pass
    left, right, _ = d.stereo_motorcycle()
    out["motorcycle"] = left
    return out, right


def crop(img, frac, anchor="center"):
    h, w = img.shape[:2]
    ch, cw = int(h * frac), int(w * frac)
    if anchor == "center":
        y, x = (h - ch) // 2, (w - cw) // 2
    else:
        y, x = 0, 0
    return img[y:y + ch, x:x + cw]


def resize(img, f):
    return cv2.resize(img, (max(1, int(img.shape[1] * f)), max(1, int(img.shape[0] * f))),
                      interpolation=cv2.INTER_AREA)


def reencode(img, q):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=q)
    return np.asarray(Image.open(buf).convert("RGB"))


def shift(img, frac):
    """Camera moved sideways: a window of 90% of the width, slid by ``frac`` of the width."""
    h, w = img.shape[:2]
    cw = int(w * 0.9)
    x = int(w * frac)
    return img[:, x:x + cw]


TRANSFORMS = {
    "re-encode q90": lambda a: reencode(a, 90),
    "re-encode q50": lambda a: reencode(a, 50),
    "re-encode q20": lambda a: reencode(a, 20),
    "PNG (lossless)": lambda a: a,
    "resize 50%": lambda a: resize(a, 0.5),
    "resize 25%": lambda a: resize(a, 0.25),
    "resize 200%": lambda a: cv2.resize(a, (a.shape[1] * 2, a.shape[0] * 2), interpolation=cv2.INTER_CUBIC),
    "crop 95% centre": lambda a: crop(a, 0.95),
    "crop 90% centre": lambda a: crop(a, 0.90),
    "crop 85% centre": lambda a: crop(a, 0.85),
    "crop 80% centre": lambda a: crop(a, 0.80),
    "crop 90% corner": lambda a: crop(a, 0.90, "corner"),
    "crop 94% + resize 90% (sample 'burst')": lambda a: degrade.crop_resize(a, 0.94, 0.9),
    "crop 90% + resize 50% + q50": lambda a: reencode(resize(crop(a, 0.9), 0.5), 50),
    "width cropped to 90%, centred": lambda a: shift(a, 0.05),
    "width cropped to 90%, off-centre by 3%": lambda a: shift(a, 0.02),
    "pan 2% (two 90%-wide frames)": 0.02,  # handled below: frame at 0 vs frame at 2%
    "pan 5% (two 90%-wide frames)": 0.05,
    "pan 10% (two 90%-wide frames)": 0.10,
    "gaussian blur L1": lambda a: degrade.gaussian_blur(a, 1),
    "gaussian blur L3": lambda a: degrade.gaussian_blur(a, 3),
    "noise L1": lambda a: degrade.gaussian_noise(a, 1),
    "noise L3": lambda a: degrade.gaussian_noise(a, 3),
    "underexpose L3": lambda a: degrade.underexpose(a, 3),
    "overexpose L3": lambda a: degrade.overexpose(a, 3),
    "reduce contrast L3": lambda a: degrade.reduce_contrast(a, 3),
    "JPEG q6 (L3)": lambda a: degrade.jpeg(a, 3),
    "horizontal flip (not a duplicate)": lambda a: a[:, ::-1],
}


def hash_via_file(img, tmp: Path, png=False) -> tuple[int, ...]:
    p = tmp / ("x.png" if png else "x.jpg")
    if png:
        Image.fromarray(np.ascontiguousarray(img)).save(p)
    else:
        Image.fromarray(np.ascontiguousarray(img)).save(p, quality=92)
    return dedup.photo_hashes(imaging.decode(p))


def stats(d) -> str:
    return f"{min(d):4d} {int(np.median(d)):6d} {max(d):4d}"


def main() -> None:
    import tempfile

    src, moto_right = originals()
    tmp = Path(tempfile.mkdtemp())
    base = {k: hash_via_file(v, tmp) for k, v in src.items()}
    print(f"{len(src)} originals: {', '.join(src)}\n")
    print(f"{'':42s} {'grouping distance':>16s}   {'whole frame only':>16s}")
    print(f"{'transformation':42s} {'min':>4s} {'median':>6s} {'max':>4s}   {'min':>4s} {'median':>6s} {'max':>4s}")
    for name, fn in TRANSFORMS.items():
        if isinstance(fn, float):
            pairs = [(hash_via_file(shift(a, 0.0), tmp), hash_via_file(shift(a, fn), tmp)) for a in src.values()]
        else:
            pairs = [(base[k], hash_via_file(fn(a), tmp, png=name.startswith("PNG"))) for k, a in src.items()]
        d = [dedup.photo_distance(a, b) for a, b in pairs]
        d0 = [dedup.hamming(a[0], b[0]) for a, b in pairs]
        print(f"{name:42s} {stats(d)}   {stats(d0)}")
    r = hash_via_file(moto_right, tmp)
    print(f"{'stereo motorcycle left vs right':42s} {dedup.photo_distance(base['motorcycle'], r):4d}"
          f"{'':14s}{dedup.hamming(base['motorcycle'][0], r[0]):4d}")
    combos = list(itertools.combinations(src, 2))
    for label, fn in (("grouping distance", dedup.photo_distance), ("whole frame only", lambda a, b: dedup.hamming(a[0], b[0]))):
        diff = np.array(sorted(fn(base[a], base[b]) for a, b in combos))
        print(f"\ndifferent photos, {label} ({len(diff)} pairs): min {diff[0]}, 1st pct {np.percentile(diff, 1):.0f}, "
              f"5th pct {np.percentile(diff, 5):.0f}, median {np.median(diff):.0f}, max {diff[-1]}")
        print("  pairs at or below: " + ", ".join(f"<={t}: {int((diff <= t).sum())}" for t in (10, 12, 14, 16, 18, 20, 22)))
    closest = sorted(((dedup.photo_distance(base[a], base[b]), a, b) for a, b in combos))[:5]
    print("closest different pairs:", ", ".join(f"{a}/{b} {d}" for d, a, b in closest))
    rng = np.random.default_rng(0)
    rand = rng.integers(0, 2 ** 63, size=200000, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    r = np.bitwise_count(rand[:100000] ^ rand[100000:])
    print(f"random 64-bit hashes (one comparison): P(d <= 10) = {np.mean(r <= 10):.1e}, "
          f"P(d <= 18) = {np.mean(r <= 18):.1e}")


if __name__ == "__main__":
    main()

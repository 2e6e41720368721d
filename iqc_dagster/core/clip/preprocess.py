"""CLIP preprocessing from the shared decode: resize, centre crop, normalise (:class:`Preprocess`, :func:`prepare`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Preprocess:
    """CLIP's image preprocessing, as a processor config describes it (defaults: the released models)."""

    shortest_edge: int | None = 224  # resize so the shortest side is this ...
    resize_hw: tuple[int, int] | None = None  # ... or to exactly (height, width)
    crop_hw: tuple[int, int] | None = (224, 224)  # centre crop; None: no crop
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    resample: int = int(Image.Resampling.BICUBIC)
    rescale_factor: float = 1 / 255
    do_normalize: bool = True

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> "Preprocess":
        """From a ``preprocessor_config.json`` dict (old and new layouts); missing keys keep defaults."""
        if not cfg:
            return cls()
        kw: dict = {}
        if cfg.get("do_resize", True):
            size = cfg.get("size", {"shortest_edge": 224})
            if isinstance(size, int):
                kw.update(shortest_edge=size, resize_hw=None)
            elif "shortest_edge" in size:
                kw.update(shortest_edge=int(size["shortest_edge"]), resize_hw=None)
            elif "height" in size and "width" in size:
                kw.update(shortest_edge=None, resize_hw=(int(size["height"]), int(size["width"])))
        else:
            kw.update(shortest_edge=None, resize_hw=None)
        if cfg.get("do_center_crop", True):
            crop = cfg.get("crop_size", 224)
            kw["crop_hw"] = (int(crop), int(crop)) if isinstance(crop, int) else (
                int(crop["height"]), int(crop["width"]))
        else:
            kw["crop_hw"] = None
        if "image_mean" in cfg:
            kw["mean"] = tuple(float(v) for v in cfg["image_mean"])
        if "image_std" in cfg:
            kw["std"] = tuple(float(v) for v in cfg["image_std"])
        if "resample" in cfg and cfg["resample"] is not None:
            kw["resample"] = int(cfg["resample"])
        if cfg.get("do_rescale", True) is False:
            kw["rescale_factor"] = 1.0
        elif "rescale_factor" in cfg:
            kw["rescale_factor"] = float(cfg["rescale_factor"])
        kw["do_normalize"] = bool(cfg.get("do_normalize", True))
        return cls(**kw)

    @property
    def output_hw(self) -> tuple[int, int] | None:
        return self.crop_hw or self.resize_hw

    def describe(self) -> str:
        size = f"shortest side {self.shortest_edge}" if self.shortest_edge else f"resize {self.resize_hw}"
        crop = f", centre crop {self.crop_hw[0]}x{self.crop_hw[1]}" if self.crop_hw else ""
        return f"{size} ({Image.Resampling(self.resample).name.lower()}){crop}, mean {self.mean}, std {self.std}"


def read_preprocess(model_dir: str | os.PathLike) -> Preprocess:
    """The preprocessing a model folder declares: ``preprocessor_config.json``, else the image processor
    inside ``processor_config.json`` (what ``CLIPProcessor.save_pretrained`` writes), else CLIP's."""
    d = Path(model_dir)
    pre = d / "preprocessor_config.json"
    if pre.is_file():
        return Preprocess.from_config(json.loads(pre.read_text()))
    proc = d / "processor_config.json"
    if proc.is_file():
        cfg = json.loads(proc.read_text())
        return Preprocess.from_config(cfg.get("image_processor") or cfg)
    return Preprocess()


def preprocess(rgb: np.ndarray, spec: Preprocess = Preprocess()) -> np.ndarray:
    """H x W x 3 uint8 RGB (the shared decode) → 3 x h x w float32, ready for ``pixel_values``.

    Same steps and rounding as transformers' ``CLIPImageProcessor``: resize (shortest side to
    ``spec.shortest_edge``, the long side ``int(short * long / short_in)``), centre crop, rescale, normalise.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected H x W x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    im = Image.fromarray(rgb)
    if spec.shortest_edge:
        s = spec.shortest_edge
        if w <= h:
            size = (s, int(s * h / w))  # (width, height) for PIL
        else:
            size = (int(s * w / h), s)
        crop = spec.crop_hw
        if size != (w, h) and crop and size[0] >= crop[1] and size[1] >= crop[0]:
            # Resample only the part that survives the centre crop: PIL's ``box`` keeps the scale and
            # the filter of the full resize (outputs agree to within one grey level in a handful of
            # pixels), at a fraction of the work.
            # Two single-axis passes, horizontal then vertical, the order PIL's own resize uses.
            ch, cw = crop
            top, left = (size[1] - ch) // 2, (size[0] - cw) // 2
            sx, sy = w / size[0], h / size[1]
            rs = Image.Resampling(spec.resample)
            if size[0] != w:
                im = im.resize((cw, h), resample=rs, box=(left * sx, 0, (left + cw) * sx, h))
            else:
                im = im.crop((left, 0, left + cw, h))
            if size[1] != h:
                im = im.resize((cw, ch), resample=rs, box=(0, top * sy, cw, (top + ch) * sy))
            else:
                im = im.crop((0, top, cw, top + ch))
        elif size != (w, h):
            im = im.resize(size, resample=Image.Resampling(spec.resample))
    elif spec.resize_hw:
        size = (spec.resize_hw[1], spec.resize_hw[0])
        if size != (w, h):
            im = im.resize(size, resample=Image.Resampling(spec.resample))
    a = np.asarray(im)
    if spec.crop_hw:
        a = center_crop(a, *spec.crop_hw)
    x = a.astype(np.float32) * np.float32(spec.rescale_factor)
    if spec.do_normalize:
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def prepare(decoded, spec: Preprocess) -> np.ndarray:
    """:func:`preprocess` for the shared decode (a ``Decoded`` or its ``rgb`` array): needs no loaded model."""
    return preprocess(getattr(decoded, "rgb", decoded), spec)


def center_crop(a: np.ndarray, ch: int, cw: int) -> np.ndarray:
    """Centre crop H x W x C to ch x cw, zero-padding first if the image is smaller (as CLIP's processor)."""
    h, w = a.shape[:2]
    if h < ch or w < cw:
        ph, pw = max(ch, h), max(cw, w)
        padded = np.zeros((ph, pw, a.shape[2]), a.dtype)
        top, left = (ph - h) // 2, (pw - w) // 2
        padded[top:top + h, left:left + w] = a
        a, h, w = padded, ph, pw
    top, left = (h - ch) // 2, (w - cw) // 2
    return a[top:top + ch, left:left + cw]



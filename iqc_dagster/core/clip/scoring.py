"""The aesthetic score from embeddings: prompt ensembling and CLIP's two-way softmax (:func:`aesthetic_probability`)."""

from __future__ import annotations

import numpy as np


def ensemble(text_embeddings: np.ndarray) -> np.ndarray:
    """CLIP's prompt ensembling: mean of the normalised prompt embeddings, normalised again."""
    t = np.asarray(text_embeddings, np.float64)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    m = t.mean(axis=0)
    return m / np.linalg.norm(m)


def aesthetic_probability(image_embeddings: np.ndarray, positive: np.ndarray, negative: np.ndarray,
                          logit_scale: float) -> np.ndarray:
    """P(positive) for each image: softmax over CLIP's scaled logits for the two prompt sets.

    ``image_embeddings`` N x D; ``positive`` P x D and ``negative`` Q x D text embeddings;
    ``logit_scale`` is CLIP's learned log-temperature (clamped at log 100 as in training).
    """
    img = np.asarray(image_embeddings, np.float64)
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    scale = float(np.exp(min(float(logit_scale), np.log(100.0))))
    logits = scale * np.stack([img @ ensemble(positive), img @ ensemble(negative)], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return (p[:, 0] / p.sum(axis=1)).clip(0.0, 1.0)



"""Heat maps ("where did the model look").

* VGG16 has a GAP → Dense head, so Grad-CAM equals CAM: the class's dense weights dotted with the
  last conv map. `cam_from_fmap` does that in numpy from the ONNX model's second output, so the
  serving path needs no TensorFlow.
* `gradcam_tf` is the real Grad-CAM (tf.GradientTape) for the keras runtime; tests check both agree.
* The CNN-LSTM's LSTM is not linear in the map, so its ONNX path estimates Grad-CAM's channel
  weights by finite differences through its head model (`gradcam_fd`). Ablation-CAM (zero one cell
  at a time, Desai & Ramaswamy 2020) was used before; on the v2 model it lit the first row the
  BiLSTM reads on almost every slice (benchmarks/heatmaps.py), so it is kept only for comparison.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image


def normalise(cam: np.ndarray) -> np.ndarray:
    cam = np.maximum(np.asarray(cam, np.float32), 0.0)
    peak = float(cam.max())
    return cam / peak if peak > 0 else cam


def upsample(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a small float map to (H, W), clipped to [0, 1]."""
    im = Image.fromarray(cam.astype(np.float32), mode="F").resize((shape[1], shape[0]), Image.BILINEAR)
    return np.clip(np.asarray(im, np.float32), 0.0, 1.0)


def place(cam: np.ndarray, shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """Heat map of the whole (H, W) image from the map of the crop `box` (y0, y1, x0, x1) the
    network saw: upsampled into the box, zero outside it."""
    y0, y1, x0, x1 = box
    out = np.zeros(shape, np.float32)
    out[y0:y1, x0:x1] = upsample(cam, (y1 - y0, x1 - x0))
    return out


def _row_spans(mask: np.ndarray) -> np.ndarray:
    """Per row: True from the first to the last True pixel."""
    idx = np.arange(mask.shape[1])[None, :]
    first = np.argmax(mask, axis=1)[:, None]
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)[:, None]
    return mask.any(axis=1)[:, None] & (idx >= first) & (idx <= last)


def head_mask(gray: np.ndarray, rel_threshold: float = 0.1) -> np.ndarray:
    """Pixels inside the head of a (H, W) uint8 slice: brighter than data.foreground_box's threshold,
    with interior holes (dark CSF, necrosis) filled by intersecting row and column spans."""
    bright = gray > max(10.0, rel_threshold * float(np.percentile(gray[::4, ::4], 99)))
    return _row_spans(bright) & _row_spans(bright.T).T


def clip_to_head(heatmap: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """Zero the heat outside the head: a coarse map upsampled from 7x7 or 8x8 cells otherwise spills
    over the skull into the background. Falls back to the map unchanged when no head is found."""
    mask = head_mask(gray)
    return heatmap * mask if mask.mean() > 0.05 else heatmap


def cam_from_fmap(fmap: np.ndarray, dense_kernel: np.ndarray, class_idx: int) -> np.ndarray:
    """CAM = ReLU(Σ_k w[k, c] · A_k) normalised to [0, 1]; fmap (h, w, k), dense_kernel (k, classes)."""
    return normalise(np.tensordot(fmap.astype(np.float32), dense_kernel[:, class_idx], axes=([2], [0])))


def cam_kernel(head_weights: list) -> np.ndarray:
    """Effective (channels, classes) CAM kernel of the VGG16 head from its last six keras weight
    arrays (BN gamma, beta, moving mean, moving var, dense kernel, dense bias): BN is affine at
    inference, so it folds into the dense kernel (the additive part does not change the CAM)."""
    gamma, _beta, _mean, var, kernel = (np.asarray(w, np.float32) for w in head_weights[-6:-1])
    return kernel * (gamma / np.sqrt(var + 1e-3))[:, None]


def ablation_cam(fmap: np.ndarray, head: Callable[[np.ndarray], np.ndarray], class_idx: int) -> np.ndarray:
    """Drop in the class logit when each spatial cell of the map is zeroed (one batched head call)."""
    h, w, _ = fmap.shape
    batch = np.repeat(fmap[None].astype(np.float32), h * w + 1, axis=0)
    for i in range(h * w):
        batch[i + 1, i // w, i % w, :] = 0.0
    logits = head(batch)
    return normalise((logits[0, class_idx] - logits[1:, class_idx]).reshape(h, w))


def gradcam_fd(fmap: np.ndarray, head: Callable[[np.ndarray], np.ndarray], class_idx: int,
               rel_eps: float = 1e-2) -> np.ndarray:
    """Grad-CAM from a head that runs forward only (ONNX): Grad-CAM weighs each channel k by the
    spatial mean of d logit / d A_k. Adding eps to channel k in every cell changes the logit by
    eps x the SUM of those gradients (to first order), so one batched head call over the map and its
    channel-shifted copies gives the weights: 1 + channels evaluations instead of a gradient.
    Matches the TensorFlow Grad-CAM (tests); unlike ablation-CAM it does not single out the first
    row the BiLSTM reads."""
    h, w, c = fmap.shape
    eps = rel_eps * max(float(np.abs(fmap).mean()), 1e-6)
    batch = np.repeat(fmap[None].astype(np.float32), c + 1, axis=0)
    batch[np.arange(1, c + 1), :, :, np.arange(c)] += eps
    logits = head(batch)
    weights = (logits[1:, class_idx] - logits[0, class_idx]) / (eps * h * w)
    return normalise(np.tensordot(fmap.astype(np.float32), weights, axes=([2], [0])))


def gradcam_tf(model, x: np.ndarray, class_idx: int) -> np.ndarray:
    """Grad-CAM (Selvaraju et al.) with tf.GradientTape; model returns [logits, conv map]."""
    import tensorflow as tf

    inp = tf.convert_to_tensor(x[None] if x.ndim == 3 else x)
    with tf.GradientTape() as tape:
        logits, fmap = model(inp, training=False)
        score = logits[:, class_idx]
    grads = tape.gradient(score, fmap)[0].numpy()
    weights = grads.mean(axis=(0, 1))
    return normalise(np.tensordot(fmap[0].numpy(), weights, axes=([2], [0])))


def _colormap(v: np.ndarray) -> np.ndarray:
    """Small 'jet'-like ramp (blue → cyan → yellow → red) without importing matplotlib in workers."""
    r = np.clip(1.5 - np.abs(4 * v - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * v - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * v - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def heatmap_to_png(heatmap: np.ndarray, base: np.ndarray | None = None, cold: float = 0.2) -> bytes:
    """RGBA PNG of the heat map: transparent where the map is below `cold`, increasingly opaque
    above. With `base` (uint8 2-D or RGB pixels) the overlay is composited onto it (opaque PNG of
    the base's size) for places that cannot layer images."""
    hm = np.clip(np.asarray(heatmap, np.float32), 0, 1)
    if base is not None and base.shape[:2] != hm.shape:
        hm = upsample(hm, base.shape[:2])
    rgb = _colormap(hm)
    alpha = np.clip((hm - cold) / (1 - cold), 0, 1) * 0.6
    if base is None:
        rgba = np.dstack([rgb, (alpha * 255).astype(np.uint8)])
    else:
        b = np.asarray(base)
        b = np.repeat(b[..., None], 3, axis=2) if b.ndim == 2 else b[..., :3]
        mixed = b.astype(np.float32) * (1 - alpha[..., None]) + rgb.astype(np.float32) * alpha[..., None]
        rgba = np.dstack([mixed.astype(np.uint8), np.full(hm.shape, 255, np.uint8)])
    buf = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG", optimize=True)
    return buf.getvalue()

"""Data: Kaggle-layout folders, fingerprinting, near-duplicate grouping, grouped split, augmentation.

Pure numpy/PIL: no TensorFlow here so the serving path can import preprocessing cheaply.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
SPLIT_SEED = 1234   # the grouped split is a property of the data set, the same for every run
GROUP_THUMB, GROUP_THRESHOLD = 32, 0.95   # near-duplicates: 32 px thumbnails with Pearson r >= 0.95
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
# Caffe-style VGG preprocessing (BGR mean); the HED and keras ImageNet VGG16 weights both expect it.
VGG_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int


def list_samples(root: str | Path, classes: Sequence[str] = CLASSES) -> list[Sample]:
    """All images of a Kaggle-layout folder (root/<class>/<file>), sorted so the order is reproducible."""
    root = Path(root)
    samples: list[Sample] = []
    for idx, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_EXTS:
                samples.append(Sample(p, idx))
    if not samples:
        raise FileNotFoundError(f"no images in class folders {list(classes)} under {root}")
    return samples


def fingerprint(samples: Iterable[Sample]) -> str:
    """sha256 over (class/filename, file bytes) of every sample: identifies the exact training data."""
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{s.path.parent.name}/{s.path.name}\n".encode())
        h.update(hashlib.sha256(s.path.read_bytes()).digest())
    return h.hexdigest()


def load_rgb(path: str | Path) -> np.ndarray:
    """uint8 H×W×3 (grayscale files are replicated) — the OOD gate needs the colour view."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """uint8 2-D view of a 2-D or H×W×3 array (ITU-R 601 luma, as PIL's convert('L'))."""
    if pixels.ndim == 2:
        return pixels.astype(np.uint8, copy=False)
    if pixels.ndim == 3 and pixels.shape[2] >= 3:
        rgb = pixels[..., :3].astype(np.float32)
        return np.clip(rgb @ np.array([0.299, 0.587, 0.114], np.float32) + 0.5, 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return pixels[..., 0].astype(np.uint8, copy=False)
    raise ValueError(f"expected a 2-D or H×W×3 array, got shape {pixels.shape}")


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Accept other dtypes defensively (e.g. 16-bit DICOM that skipped windowing): min-max to uint8."""
    if pixels.dtype == np.uint8:
        return pixels
    a = pixels.astype(np.float32)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.clip((a - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def resize_gray(gray: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(gray).resize((size, size), Image.BILINEAR), dtype=np.uint8)


Box = tuple[int, int, int, int]   # (y0, y1, x0, x1), half-open


def foreground_box(gray: np.ndarray, rel_threshold: float = 0.1, margin: float = 0.03) -> Box:
    """Bounding box of the head in a slice: rows and columns in which more than 2% of pixels are
    brighter than `rel_threshold` of the 99th percentile. The sources frame the head with very
    different black borders; cropping to it gives the network the same anatomy scale for every
    image and spends its pixels on the brain. Falls back to the whole frame when the box is
    implausibly small (blank, noise or a tiny bright object)."""
    h, w = gray.shape
    thr = max(10.0, rel_threshold * float(np.percentile(gray[::4, ::4], 99)))
    mask = gray > thr
    rows = np.nonzero(mask.sum(axis=1) > max(2, 0.02 * w))[0]
    cols = np.nonzero(mask.sum(axis=0) > max(2, 0.02 * h))[0]
    if len(rows) == 0 or len(cols) == 0:
        return 0, h, 0, w
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    if y1 - y0 < 0.25 * h or x1 - x0 < 0.25 * w:
        return 0, h, 0, w
    my, mx = int(margin * (y1 - y0)), int(margin * (x1 - x0))
    return max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)


def crop(gray: np.ndarray, box: Box) -> np.ndarray:
    y0, y1, x0, x1 = box
    return gray[y0:y1, x0:x1]


def codec_of(meta: dict) -> dict | None:
    """The input codec round trip a model's metadata.json asks for (None for most models)."""
    return meta["input"].get("codec")


def crops_head(meta: dict) -> bool:
    """Whether a model's metadata.json asks for the head crop; artifacts older than the crop have
    no `input.crop` and were trained on the whole frame."""
    return meta["input"].get("crop") == "head"


def encode_view(gray: np.ndarray, codec: dict) -> bytes:
    """A view encoded as codec = {"format": "WEBP" | "JPEG" | "PNG", "quality": q} (inference.pack)."""
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, codec["format"], quality=int(codec["quality"]))
    return buf.getvalue()


def decode_view(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def network_grays(gray: np.ndarray, size: int, crop_head: bool, codec: dict | None = None) -> tuple[np.ndarray, Box]:
    """The one preprocessing path of training, evaluation and serving: (optional head crop) ->
    bilinear resize to size x size -> (optional) the encode/decode round trip of the codec a model
    was trained through (metadata input.codec: a model fitted from a lossy pack learnt its
    artefacts, and scores best when served the same way). Returns the view and the box it came from."""
    h, w = gray.shape
    box = foreground_box(gray) if crop_head else (0, h, 0, w)
    view = resize_gray(np.ascontiguousarray(crop(gray, box)), size)
    return (decode_view(encode_view(view, codec)) if codec else view), box


def vgg_input(grays: np.ndarray) -> np.ndarray:
    """(N,S,S) uint8 grayscale -> (N,S,S,3) float32 caffe-preprocessed (grey replicated, BGR mean off)."""
    x = grays.astype(np.float32)[..., None]
    return np.repeat(x, 3, axis=-1) - VGG_MEAN_BGR


def unit_input(grays: np.ndarray) -> np.ndarray:
    """(N,S,S) uint8 -> (N,S,S,1) float32 in [0,1] for the from-scratch CNN-LSTM."""
    return (grays.astype(np.float32) / 255.0)[..., None]


# ---------------------------------------------------------------- near-duplicate grouping

class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]  # path halving
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)


def thumbnail_vectors(grays: Sequence[np.ndarray], size: int = 16) -> np.ndarray:
    """Zero-mean, unit-norm downscaled pixels: their dot product is the Pearson correlation."""
    out = np.empty((len(grays), size * size), np.float32)
    for i, g in enumerate(grays):
        v = np.asarray(Image.fromarray(g).resize((size, size), Image.BOX), np.float32).ravel()
        v -= v.mean()
        n = np.linalg.norm(v)
        out[i] = v / n if n > 0 else v
    return out


def near_duplicate_groups(vectors: np.ndarray, threshold: float = 0.95,
                          flipped: np.ndarray | None = None, chunk: int = 1024) -> np.ndarray:
    """Union-find over pairs whose thumbnail correlation ≥ threshold (also against the mirrored
    thumbnails, since the sources contain mirrored copies). Returns a group id per image."""
    n = len(vectors)
    uf = UnionFind(n)
    for start in range(0, n, chunk):
        block = vectors[start:start + chunk]
        sims = block @ vectors.T
        if flipped is not None:
            sims = np.maximum(sims, block @ flipped.T)
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist()):
            if start + r < c:
                uf.union(start + r, c)
    return uf.groups()


def mirrored_vectors(vectors: np.ndarray, size: int = 16) -> np.ndarray:
    return vectors.reshape(-1, size, size)[:, :, ::-1].reshape(len(vectors), -1).copy()


def grouped_split(groups: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask 'is validation'. Whole groups go to one side; stratified on each group's
    majority label so class shares stay close to the full set."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    major = np.array([np.bincount(labels[groups == g]).argmax() for g in uniq])
    is_val = np.zeros(len(groups), bool)
    for c in np.unique(major):
        gs = uniq[major == c]
        gs = gs[rng.permutation(len(gs))]
        target = val_fraction * np.isin(groups, gs).sum()
        taken = 0
        for g in gs:
            if taken >= target:
                break
            m = groups == g
            is_val |= m
            taken += int(m.sum())
    return is_val


# ---------------------------------------------------------------- augmentation

def augment(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random flip, small rotation, crop/zoom and intensity/contrast/gamma jitter on a uint8 slice.
    Intensity changes matter here: the notumor class comes from another source (SOURCE.md)."""
    h, w = gray.shape
    im = Image.fromarray(gray)
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    angle = float(rng.uniform(-12, 12))
    im = im.rotate(angle, resample=Image.BILINEAR, fillcolor=0)
    scale = float(rng.uniform(0.85, 1.0))
    cw, ch = int(w * scale), int(h * scale)
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    im = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.BILINEAR)
    a = np.asarray(im, np.float32) / 255.0
    a = a ** float(rng.uniform(0.75, 1.35))
    a = a * float(rng.uniform(0.8, 1.2)) + float(rng.uniform(-0.06, 0.06))
    return np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Dataset:
    """Everything train/evaluate need about a Kaggle-layout folder, decoded once."""
    samples: list[Sample]
    grays: list[np.ndarray]        # full-resolution uint8 slices
    labels: np.ndarray

    @classmethod
    def load(cls, root: str | Path, classes: Sequence[str] = CLASSES) -> "Dataset":
        samples = list_samples(root, classes)
        grays = [to_gray(load_rgb(s.path)) for s in samples]
        return cls(samples, grays, np.array([s.label for s in samples], np.int64))

    def resized(self, size: int, idx: np.ndarray | None = None) -> np.ndarray:
        idx = np.arange(len(self.grays)) if idx is None else idx
        return np.stack([resize_gray(self.grays[i], size) for i in idx])


def make_split(ds: Dataset, val_fraction: float = 0.2, threshold: float = GROUP_THRESHOLD, seed: int = SPLIT_SEED,
               thumb: int = GROUP_THUMB
               ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Grouped split: returns (groups, split, info) where split is 0=train, 1=val-cal, 2=val-test.
    val-cal (half the validation groups) drives early stopping, temperature and OOD thresholds;
    val-test is touched only for the reported figures."""
    # 32 px + r>=0.95: 16 px thumbnails of brain slices all look alike and chain into one giant
    # group; at 32 px the largest group is ~50 images (mostly neighbouring slices of one scan).
    vecs = thumbnail_vectors(ds.grays, thumb)
    groups = near_duplicate_groups(vecs, threshold, flipped=mirrored_vectors(vecs, thumb))
    is_val = grouped_split(groups, ds.labels, val_fraction, seed)
    split = np.zeros(len(groups), np.int64)
    val_idx = np.nonzero(is_val)[0]
    half = grouped_split(groups[val_idx], ds.labels[val_idx], 0.5, seed + 1)
    split[val_idx[~half]] = 1
    split[val_idx[half]] = 2
    sizes = np.bincount(np.unique(groups, return_inverse=True)[1])
    info = {
        "method": f"{thumb}x{thumb} box-downscaled grey thumbnails, Pearson r >= {threshold} (also vs mirrored), "
                  f"union-find groups, group-stratified {val_fraction:.0%} validation split in two halves "
                  f"(val_cal: early stopping + temperature + OOD thresholds; val_test: reported metrics), "
                  f"seed {seed}",
        "n_images": int(len(groups)),
        "n_groups": int(len(sizes)),
        "n_groups_with_duplicates": int((sizes > 1).sum()),
        "n_images_in_duplicate_groups": int(sizes[sizes > 1].sum()),
        "largest_group": int(sizes.max()),
        "n_train": int((split == 0).sum()),
        "n_val_cal": int((split == 1).sum()),
        "n_val_test": int((split == 2).sum()),
        "groups_spanning_train_and_val": int(len(set(groups[split == 0]) & set(groups[split > 0]))),
    }
    return groups, split, info

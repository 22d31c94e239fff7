"""Images outside (and at the edge of) what the classifier was trained on, built offline.

Every generator returns a list of uint8 images (2-D grey or H×W×3), deterministic for a seed.
What each is, honestly:
- photos: scikit-image's bundled sample photos (astronaut, cat, coffee, rocket, faces...);
- documents: text pages, forms and tables rendered with PIL;
- noise: uniform, Gaussian, smoothed, salt-and-pepper noise and blank frames;
- ct / radiograph / ultrasound: synthetic renderings (a CT-windowed head and body cross-section
  with a bright skull or bone, a chest-radiograph-like projection, a fan-shaped speckle image),
  plus scikit-image's Shepp-Logan head phantom. They are proxies, not real scans;
- other_mr: synthetic MR-like cross-sections of an abdomen and a knee (proxies; no real MR of
  other body parts was available offline);
- skull_stripped: real training-set brain slices with the skull and scalp masked out (the brain
  kept by eroding the head mask), i.e. real brain MRI in a form the model never saw.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _u8(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    return np.zeros(a.shape, np.uint8) if hi <= lo else ((a - lo) / (hi - lo) * 255).astype(np.uint8)


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    return (x - n / 2) / (n / 2), (y - n / 2) / (n / 2)


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def photos(seed: int = 0) -> list[np.ndarray]:
    from skimage import data

    names = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "moon", "horse", "brick", "grass",
             "gravel", "hubble_deep_field", "immunohistochemistry", "retina", "cell", "clock", "colorwheel",
             "logo", "microaneurysms", "motorcycle_left" if hasattr(data, "motorcycle_left") else "cat"]
    out = []
    for name in names:
        try:
            image = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a sample that needs a download is skipped
            continue
        image = np.asarray(image)
        out.append(_u8(image) if image.dtype != np.uint8 else image[..., :3] if image.ndim == 3 else image)
    faces = np.load(Path(data.__file__).parent / "lfw_subset.npy")[:20]
    out += [np.asarray(Image.fromarray(_u8(f)).resize((200, 200))) for f in faces]
    return out


def documents(seed: int = 0) -> list[np.ndarray]:
    rng = _rng(seed)
    words = ("patient report brain MRI findings impression no acute abnormality contrast sequence axial "
             "radiologist signed date history clinical indication headache follow-up comparison").split()
    font = ImageFont.load_default()
    out = []
    for k in range(20):
        w, h = (600, 800) if k % 2 == 0 else (800, 600)
        bg = int(rng.integers(225, 256))
        page = Image.new("L", (w, h), bg)
        draw = ImageDraw.Draw(page)
        y = 20
        while y < h - 30:
            if k % 4 == 1 and rng.random() < 0.2:  # a table row
                for c in range(0, w - 60, 120):
                    draw.rectangle([30 + c, y, 140 + c, y + 18], outline=0)
            line = " ".join(rng.choice(words, int(rng.integers(4, 12))))
            draw.text((30, y), line, fill=int(rng.integers(0, 60)), font=font)
            y += int(rng.integers(14, 26))
        image = np.asarray(page)
        if k % 3 == 2:  # a photographed page: slanted, shaded, noisy
            image = np.asarray(Image.fromarray(image).rotate(float(rng.uniform(-8, 8)), fillcolor=90))
            image = np.clip(image * np.linspace(0.7, 1.0, image.shape[1])[None] + rng.normal(0, 6, image.shape),
                            0, 255).astype(np.uint8)
        out.append(image)
    return out


def noise(seed: int = 0) -> list[np.ndarray]:
    rng = _rng(seed)
    out = []
    for k in range(5):
        out.append(rng.integers(0, 256, (224, 224), dtype=np.uint8))
        out.append(np.clip(rng.normal(128, 40, (224, 224)), 0, 255).astype(np.uint8))
        out.append(_u8(ndimage.gaussian_filter(rng.normal(0, 1, (224, 224)), 2 + 3 * k)))
        sp = np.full((224, 224), 0, np.uint8)
        sp[rng.random((224, 224)) < 0.05 * (k + 1)] = 255
        out.append(sp)
        out.append(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))
    out += [np.full((224, 224), v, np.uint8) for v in (0, 40, 128, 255)]
    return out


def _ct_head(rng: np.random.Generator, n: int = 256) -> np.ndarray:
    x, y = _grid(n)
    rx, ry = rng.uniform(0.62, 0.72), rng.uniform(0.78, 0.88)
    img = np.zeros((n, n), np.float32)
    img[_ellipse(x, y, 0, 0, rx + 0.06, ry + 0.06)] = 0.3                # scalp
    img[_ellipse(x, y, 0, 0, rx + 0.04, ry + 0.04)] = 1.0                # skull (bone is brightest on CT)
    brain = _ellipse(x, y, 0, 0, rx, ry)
    img[brain] = 0.42 + rng.normal(0, 0.01, brain.sum())                 # grey/white matter barely differ
    img[_ellipse(x, y, -0.12, -0.05, 0.08, 0.25) | _ellipse(x, y, 0.12, -0.05, 0.08, 0.25)] = 0.2  # ventricles
    return _u8(ndimage.gaussian_filter(img, 1.0) + rng.normal(0, 0.02, img.shape))


def _ct_body(rng: np.random.Generator, n: int = 256) -> np.ndarray:
    x, y = _grid(n)
    img = np.zeros((n, n), np.float32)
    img[_ellipse(x, y, 0, 0.05, 0.9, 0.6)] = 0.45
    img[_ellipse(x, y, -0.4, 0, 0.3, 0.35) | _ellipse(x, y, 0.4, 0, 0.3, 0.35)] = 0.05 + rng.uniform(0, 0.1)
    img[_ellipse(x, y, 0, 0.45, 0.09, 0.09)] = 1.0                         # vertebra
    img[_ellipse(x, y, 0.05, 0.0, 0.12, 0.12)] = 0.6                        # aorta / heart
    return _u8(ndimage.gaussian_filter(img, 1.2) + rng.normal(0, 0.03, img.shape))


def ct(seed: int = 0) -> list[np.ndarray]:
    from skimage import data

    rng = _rng(seed)
    out = [_ct_head(rng) for _ in range(10)] + [_ct_body(rng) for _ in range(10)]
    phantom = data.shepp_logan_phantom()
    out += [_u8(np.asarray(Image.fromarray(_u8(phantom)).rotate(a))) for a in (0, 10, -10)]
    return out


def radiograph(seed: int = 0) -> list[np.ndarray]:
    rng = _rng(seed)
    out = []
    for _ in range(15):
        n = 256
        x, y = _grid(n)
        img = np.full((n, n), 0.75, np.float32)                              # soft tissue (bright on film)
        for cx in (-0.38, 0.38):
            lung = _ellipse(x, y, cx, -0.05, rng.uniform(0.22, 0.3), rng.uniform(0.5, 0.6))
            img[lung] = 0.25
        for k in range(8):                                                   # ribs
            band = np.abs(y + 0.6 - k * 0.15 - 0.15 * x ** 2) < 0.02
            img[band & (np.abs(x) < 0.7)] += 0.25
        img[np.abs(x) < 0.07] = 0.95                                         # spine / mediastinum
        img[np.abs(x) > 0.85] = 0.05
        out.append(_u8(ndimage.gaussian_filter(img, 2.0) + rng.normal(0, 0.02, img.shape)))
    return out


def ultrasound(seed: int = 0) -> list[np.ndarray]:
    rng = _rng(seed)
    out = []
    for _ in range(15):
        n = 256
        y, x = np.mgrid[0:n, 0:n].astype(np.float32)
        r = np.hypot(x - n / 2, y + 10)
        angle = np.arctan2(x - n / 2, y + 10)
        fan = (r > 30) & (r < n - 10) & (np.abs(angle) < rng.uniform(0.5, 0.75))
        tissue = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), 8)
        speckle = rng.rayleigh(0.5, (n, n))
        img = np.where(fan, np.clip(0.4 + tissue * 2, 0, 1) * speckle, 0.0)
        cyst = _ellipse(*_grid(n), rng.uniform(-0.2, 0.2), rng.uniform(0.1, 0.5), 0.15, 0.1)
        img[cyst & fan] *= 0.1
        out.append(_u8(np.clip(img, 0, 1.5)))
    return out


def other_mr(seed: int = 0) -> list[np.ndarray]:
    """Synthetic MR-like abdomen and knee cross-sections (T1-like: fat bright, fluid dark)."""
    rng = _rng(seed)
    out = []
    for k in range(20):
        n = 256
        x, y = _grid(n)
        img = np.zeros((n, n), np.float32)
        texture = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), 3) * 0.05
        if k % 2 == 0:   # abdomen: fat ring, liver, kidneys, spine, bowel
            img[_ellipse(x, y, 0, 0, 0.92, 0.65)] = 0.9
            img[_ellipse(x, y, 0, 0, 0.84, 0.57)] = 0.45
            img[_ellipse(x, y, -0.35, -0.1, 0.4, 0.3)] = 0.55
            img[_ellipse(x, y, -0.45, 0.25, 0.1, 0.15) | _ellipse(x, y, 0.45, 0.25, 0.1, 0.15)] = 0.35
            img[_ellipse(x, y, 0, 0.4, 0.1, 0.1)] = 0.7
            for _ in range(6):
                img[_ellipse(x, y, rng.uniform(0, 0.5), rng.uniform(-0.3, 0.2), 0.07, 0.07)] = rng.uniform(0.1, 0.8)
        else:            # knee / shoulder: round bones (dark cortex, bright marrow) in muscle and fat
            img[_ellipse(x, y, 0, 0, 0.75, 0.8)] = 0.85
            img[_ellipse(x, y, 0, 0, 0.68, 0.72)] = 0.35
            for cx, cy, r in ((0, -0.1, 0.35), (0.2, 0.5, 0.12)):
                img[_ellipse(x, y, cx, cy, r + 0.03, r + 0.03)] = 0.02
                img[_ellipse(x, y, cx, cy, r, r)] = 0.8
        out.append(_u8(ndimage.gaussian_filter(img, 1.0) + texture + rng.normal(0, 0.02, img.shape)))
    return out


def skull_strip(gray: np.ndarray) -> np.ndarray:
    """The slice with everything outside the brain set to 0: the head mask (Otsu-like threshold,
    holes filled) eroded by ~8 % of the head's size removes the scalp and skull ring."""
    g = gray.astype(np.float32)
    head = ndimage.binary_fill_holes(g > max(10.0, 0.1 * np.percentile(g, 99)))
    labels, n = ndimage.label(head)
    if n == 0:
        return gray
    head = labels == (np.argmax(ndimage.sum(head, labels, range(1, n + 1))) + 1)
    size = np.sqrt(head.sum())
    brain = ndimage.binary_erosion(head, iterations=max(int(size * 0.08), 2))
    return np.where(brain, gray, 0).astype(np.uint8)


def skull_stripped(paths: list[Path]) -> list[np.ndarray]:
    from inference.data import load_rgb, to_gray

    return [skull_strip(to_gray(load_rgb(p))) for p in paths]


SYNTHETIC: dict[str, Callable[[int], list[np.ndarray]]] = {
    "photos": photos, "documents": documents, "noise": noise, "ct": ct, "radiograph": radiograph,
    "ultrasound": ultrasound, "other_mr": other_mr,
}

"""Pure helpers: no Django, no TensorFlow, no shared data."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inference import calibrate
from inference.data import (Dataset, Sample, UnionFind, augment, foreground_box, grouped_split, make_split,
                            mirrored_vectors, near_duplicate_groups, network_grays, thumbnail_vectors, to_gray,
                            to_uint8, vgg_input)
from inference.gradcam import ablation_cam, cam_from_fmap, cam_kernel, gradcam_fd, heatmap_to_png, place, upsample
from inference.ood import OODGate, image_stats
from inference.predict import CLASSES, SliceResult, aggregate


def _blob(seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    for _ in range(6):
        y, x = rng.integers(8, size - 8, 2)
        r = rng.integers(3, 10)
        yy, xx = np.mgrid[:size, :size]
        img += 120 * ((yy - y) ** 2 + (xx - x) ** 2 < r * r)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_union_find_merges_transitively():
    uf = UnionFind(5)
    uf.union(0, 1)
    uf.union(3, 1)
    g = uf.groups()
    assert g[0] == g[1] == g[3] and g[2] != g[0] and g[4] != g[0]


def test_near_duplicates_grouped_including_mirrors_and_recompression():
    a, b = _blob(1), _blob(2)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=60)
    a_jpeg = np.asarray(Image.open(buf))
    imgs = [a, b, a_jpeg, a[:, ::-1].copy()]
    v = thumbnail_vectors(imgs, 32)
    g = near_duplicate_groups(v, 0.95, flipped=mirrored_vectors(v, 32))
    assert g[0] == g[2] == g[3]
    assert g[1] != g[0]


def test_grouped_split_keeps_groups_on_one_side():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 60, 400)
    labels = groups % 4
    is_val = grouped_split(groups, labels, 0.2, seed=3)
    assert not set(groups[is_val]) & set(groups[~is_val])
    assert 0.1 < is_val.mean() < 0.35


def test_make_split_three_way_no_leak(tmp_path):
    grays = [_blob(i % 30) for i in range(120)]  # every image has 3 exact copies
    ds = Dataset([Sample(tmp_path / f"{i}.png", i % 4) for i in range(120)], grays,
                 np.array([i % 4 for i in range(120)]))
    groups, split, info = make_split(ds, val_fraction=0.3)
    assert info["groups_spanning_train_and_val"] == 0
    for a in range(3):
        for b in range(a + 1, 3):
            assert not set(groups[split == a]) & set(groups[split == b])
    assert info["n_groups"] == 30


def test_ece_perfect_and_overconfident():
    y = np.array([0, 1, 0, 1])
    perfect = np.eye(4)[y]
    assert calibrate.ece(perfect, y) == pytest.approx(0.0)
    over = np.tile([0.9, 0.1, 0, 0], (4, 1))  # 90% confident, 50% right
    assert calibrate.ece(over, y) == pytest.approx(0.4)


def test_temperature_scaling_recovers_known_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 4))
    y = np.array([rng.choice(4, p=calibrate.softmax(l)) for l in true_logits])
    t = calibrate.fit_temperature(true_logits * 3.0, y)  # model 3x overconfident
    assert t == pytest.approx(3.0, rel=0.15)
    assert calibrate.nll(true_logits * 3, y, t) < calibrate.nll(true_logits * 3, y, 1.0)


def _slice(p: list[float], ok: bool = True) -> SliceResult:
    return SliceResult(dict(zip(CLASSES, p)), CLASSES[int(np.argmax(p))] if ok else None, ok, 0.5, None)


def test_aggregation_rule():
    r = aggregate([_slice([0.1, 0.1, 0.7, 0.1]), _slice([0.7, 0.1, 0.1, 0.1]), _slice([0.1, 0.1, 0.8, 0.0])])
    assert r.is_brain_mri and r.label == "notumor"
    assert r.key_slice_index == 1  # highest 1 - p(notumor)
    assert sum(r.probabilities.values()) == pytest.approx(1.0)
    assert r.probabilities["glioma"] == pytest.approx(0.3)
    # a failing slice is excluded from the mean; more than half failing -> not MRI
    r = aggregate([_slice([0.9, 0, 0.1, 0], ok=False), _slice([0, 0, 1, 0])])
    assert r.is_brain_mri and r.probabilities["notumor"] == pytest.approx(1.0) and r.key_slice_index == 1
    r = aggregate([_slice([0.9, 0, 0.1, 0], ok=False), _slice([0.9, 0, 0.1, 0], ok=False), _slice([0, 0, 1, 0])])
    assert not r.is_brain_mri and r.label is None


def test_image_stats_separate_colour_noise_blank():
    mri = _blob(5, 128)
    noise = np.random.default_rng(0).integers(0, 256, (128, 128), dtype=np.uint8)
    colour = np.zeros((128, 128, 3), np.uint8)
    colour[..., 0] = 200
    colour[..., 1] = np.linspace(0, 255, 128)[None].astype(np.uint8)
    s_mri, s_noise, s_col = image_stats(mri), image_stats(noise), image_stats(colour)
    assert s_col[0] > 0.3 and s_mri[0] == 0.0            # saturation
    assert s_noise[2] > 3 * s_mri[2]                     # high-frequency energy
    assert image_stats(np.full((50, 50), 128, np.uint8))[1] == 0.0  # blank: no contrast


def test_ood_gate_mahalanobis_and_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.normal(0, 1, (400, 8))
    labels = rng.integers(0, 4, 400)
    feats[:, 0] += labels * 3
    means, prec = OODGate.fit_mahalanobis(feats, labels)
    stats = rng.normal(0, 1, (400, 5))
    lo, hi = OODGate.fit_stat_ranges(stats)
    gate = OODGate(lo, hi, means, prec, float(np.percentile(OODGate(lo, hi, means, prec, 1).mahalanobis(feats), 99)))
    ok, score = gate.score(stats[:10], feats[:10])
    assert ok.mean() >= 0.9
    ok, score = gate.score(stats[:1], feats[:1] + 50)
    assert not ok[0] and score[0] > 1
    ok, _ = gate.score(stats[:1] + 100, feats[:1])
    assert not ok[0]
    gate.save(tmp_path / "g.npz")
    g2 = OODGate.load(tmp_path / "g.npz")
    assert g2.threshold == pytest.approx(gate.threshold)


def test_preprocessing():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 100
    assert to_gray(rgb)[0, 0] == round(0.587 * 100)
    x = vgg_input(np.full((1, 2, 2), 200, np.uint8))
    assert x.shape == (1, 2, 2, 3) and x[0, 0, 0, 0] == pytest.approx(200 - 103.939, abs=1e-3)
    u16 = np.array([[0, 1000], [2000, 4000]], np.uint16)
    assert to_uint8(u16).max() == 255 and to_uint8(u16).min() == 0
    out = augment(_blob(3, 64), np.random.default_rng(0))
    assert out.shape == (64, 64) and out.dtype == np.uint8


def test_cam_helpers_and_png():
    fmap = np.zeros((4, 4, 2), np.float32)
    fmap[1, 2, 0] = 5.0
    fmap[3, 3, 1] = 5.0
    kernel = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    cam = cam_from_fmap(fmap, kernel, 0)
    assert cam[1, 2] == 1.0 and cam[3, 3] == 0.0
    # a linear head: ablation CAM ranks cells like CAM
    head = lambda f: np.einsum("nhwk,kc->nc", f, kernel) / 16.0  # noqa: E731
    abl = ablation_cam(fmap, head, 1)
    assert abl[3, 3] == 1.0 and abl[1, 2] == 0.0
    # finite-difference Grad-CAM through a forward-only head equals Grad-CAM = CAM for a linear head
    assert np.allclose(gradcam_fd(fmap, head, 0), cam, atol=1e-3)
    assert upsample(cam, (32, 32)).shape == (32, 32)
    # BN folding: gamma/sqrt(var+eps) scales rows of the kernel
    k = cam_kernel([np.array([2.0, 1.0]), np.zeros(2), np.zeros(2), np.array([1.0, 1.0]) - 1e-3, kernel, np.zeros(2)])
    assert k[0, 0] == pytest.approx(2.0) and k[1, 1] == pytest.approx(1.0)
    png = heatmap_to_png(upsample(cam, (32, 32)))
    im = Image.open(io.BytesIO(png))
    assert im.mode == "RGBA" and im.size == (32, 32)
    alpha = np.asarray(im)[..., 3]
    assert alpha.min() == 0 and alpha.max() > 0  # transparent where cold
    over = Image.open(io.BytesIO(heatmap_to_png(cam, base=_blob(1, 64))))
    assert over.size == (64, 64)


def _head_on_black(h: int = 200, w: int = 300) -> np.ndarray:
    """A bright ellipse ('head', rows 40-160, cols 90-210) on a black frame with a faint noise floor."""
    yy, xx = np.mgrid[:h, :w]
    img = np.where(((yy - 100) / 60.0) ** 2 + ((xx - 150) / 60.0) ** 2 <= 1.0, 140, 0).astype(np.float32)
    img += np.random.default_rng(0).uniform(0, 6, img.shape)
    return img.astype(np.uint8)


def test_foreground_box_frames_the_head():
    y0, y1, x0, x1 = foreground_box(_head_on_black())
    # ellipse spans rows 40..160, cols 90..210; a 3% margin around it, nothing of the black frame
    assert 34 <= y0 <= 44 and 156 <= y1 <= 166 and 84 <= x0 <= 94 and 206 <= x1 <= 216


def test_foreground_box_falls_back_to_whole_frame():
    blank = np.zeros((64, 80), np.uint8)
    speck = blank.copy()
    speck[10:14, 10:14] = 255            # a tiny bright object is not a head
    assert foreground_box(blank) == (0, 64, 0, 80)
    assert foreground_box(speck) == (0, 64, 0, 80)


def test_network_grays_crops_only_when_asked():
    img = _head_on_black()
    cropped, box = network_grays(img, 32, crop_head=True)
    whole, full_box = network_grays(img, 32, crop_head=False)
    assert cropped.shape == whole.shape == (32, 32)
    assert full_box == (0, 200, 0, 300) and box != full_box
    assert cropped.mean() > whole.mean()  # the crop drops most of the black frame


def test_heat_map_placed_back_into_the_crop_box():
    hm = place(np.ones((4, 4), np.float32), (50, 60), (10, 30, 20, 50))
    assert hm.shape == (50, 60)
    assert hm[10:30, 20:50].min() > 0.99 and hm.sum() == pytest.approx(20 * 30)
    assert np.array_equal(place(np.ones((4, 4), np.float32), (8, 8), (0, 8, 0, 8)), np.ones((8, 8)))


def test_weights_digest_tells_runs_apart():
    from inference.train import weights_digest

    a = [np.zeros((3, 3), np.float16), np.ones(4, np.float16)]
    b = [a[0], a[1].copy()]
    b[1][2] = 0.5
    assert weights_digest(a) == weights_digest([w.copy() for w in a])
    assert weights_digest(a) != weights_digest(b) and len(weights_digest(a)) == 6


def test_heat_map_clipped_to_the_head():
    """No heat over the background: a map that covers the whole frame keeps only the head."""
    from inference.gradcam import clip_to_head, head_mask

    gray = np.zeros((100, 100), np.uint8)
    yy, xx = np.mgrid[:100, :100]
    head = (yy - 50) ** 2 + (xx - 50) ** 2 < 35 ** 2
    gray[head] = 120
    gray[45:55, 45:55] = 0            # a dark hole inside the head (CSF, necrosis) stays inside
    mask = head_mask(gray)
    assert mask[50, 50] and not mask[2, 2] and mask.sum() == pytest.approx(head.sum(), rel=0.02)
    clipped = clip_to_head(np.ones((100, 100), np.float32), gray)
    assert clipped[50, 50] == 1.0 and clipped[2, 2] == 0.0 and clipped[head].min() == 1.0
    blank = np.zeros((100, 100), np.uint8)   # no head found: the map is left as it is
    assert clip_to_head(np.ones((100, 100), np.float32), blank).min() == 1.0

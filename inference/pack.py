"""A compact, self-contained copy of the training views for a machine without ../shared (the lent GPU).

    python -m inference.pack ../shared/data/brain-tumor-mri/Training var/pack/train224.npz --size 224

Each slice is stored as the network sees it before augmentation (head crop -> size x size, grey),
WebP/JPEG-encoded (lossy: a transport copy), together with its label, file name and the grouped split computed HERE from the
original files (so the remote run uses exactly the split that evaluation uses). The pack is a
transport format only: final calibration, gate fitting and every reported figure are computed from
the original files (`python -m inference.train finalize`).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from inference.data import SPLIT_SEED, Dataset, decode_view, encode_view, fingerprint, make_split, network_grays


@dataclass
class Views:
    """What training needs: preprocessed grey views, labels, split (0 train, 1 val_cal, 2 val_test)."""
    grays: np.ndarray          # (N, S, S) uint8
    labels: np.ndarray
    split: np.ndarray
    names: list[str]
    fingerprint: str
    split_info: dict
    root: str
    codec: dict | None = None     # the lossy transport the views went through, if any


def views_from_folder(root: str | Path, size: int, crop_head: bool, seed: int = SPLIT_SEED) -> Views:
    ds = Dataset.load(root)
    _, split, info = make_split(ds, seed=seed)
    grays = np.stack([network_grays(g, size, crop_head)[0] for g in ds.grays])
    names = [f"{s.path.parent.name}/{s.path.name}" for s in ds.samples]
    return Views(grays, ds.labels, split, names, fingerprint(ds.samples), info, str(root))


def write_pack(views: Views, path: str | Path, quality: int = 75, image_format: str = "WEBP") -> int:
    codec = {"format": image_format, "quality": quality}
    blobs = [np.frombuffer(encode_view(g, codec), np.uint8) for g in views.grays]
    lengths = np.array([len(b) for b in blobs], np.int64)
    meta = {"fingerprint": views.fingerprint, "split_info": views.split_info, "root": views.root,
            "names": views.names, "size": int(views.grays.shape[1]), "format": image_format, "quality": quality}
    np.savez(path, blob=np.concatenate(blobs), lengths=lengths, labels=views.labels, split=views.split,
             meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return int(Path(path).stat().st_size)


def read_pack(path: str | Path) -> Views:
    z = np.load(path)
    meta = json.loads(bytes(z["meta"]).decode())
    ends = np.cumsum(z["lengths"])
    blob = z["blob"]
    grays = np.stack([decode_view(blob[e - n:e].tobytes()) for e, n in zip(ends, z["lengths"])])
    codec = {"format": meta.get("format", "JPEG"), "quality": meta.get("quality", meta.get("jpeg_quality"))}
    return Views(grays, z["labels"], z["split"], meta["names"], meta["fingerprint"], meta["split_info"],
                 meta["root"], codec)


def load_views(data: str | Path, size: int, crop_head: bool, seed: int = SPLIT_SEED) -> Views:
    """A Kaggle-layout folder, or a pack written by this module (its size must match)."""
    if str(data).endswith(".npz"):
        views = read_pack(data)
        if views.grays.shape[1] != size:
            raise ValueError(f"pack {data} holds {views.grays.shape[1]} px views, training wants {size}")
        return views
    return views_from_folder(data, size, crop_head, seed)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--crop", choices=("head", "none"), default="head")
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--format", choices=("WEBP", "JPEG", "PNG"), default="WEBP",
                    help="lossy WebP q75 keeps a 224 px pack of Training/ near 30 MB (the GPU transfer limit)")
    a = ap.parse_args(argv)
    t0 = time.time()
    views = views_from_folder(a.data, a.size, a.crop == "head")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    n = write_pack(views, a.out, a.quality, a.format)
    print(f"{len(views.labels)} views, {n / 1e6:.1f} MB, split {views.split_info['n_train']}/"
          f"{views.split_info['n_val_cal']}/{views.split_info['n_val_test']} in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()

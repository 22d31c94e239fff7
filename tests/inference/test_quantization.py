"""int8 files give the same scores on every x86 CPU: their weights use 7 bits, so ONNX Runtime's
U8S8 kernels on CPUs without VNNI (16-bit pair sums, VPMADDUBSW) cannot saturate. With full-range
weights the shared image check refused training slices on the AVX2-only CI machine that an
AVX512-VNNI machine accepted."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from inference.export import quantize_int8

SEVEN_BIT = 64   # onnxruntime's reduce_range for int8 weights: [-64, 64]; 2 x 255 x 64 < 32767


def int8_weight_extremes(path: Path) -> list[int]:
    """max |w| of every int8 weight that a DequantizeLinear node of the file reads."""
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    arrays = [numpy_helper.to_array(inits[n.input[0]]) for n in model.graph.node
              if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    return [int(np.abs(a.astype(np.int32)).max()) for a in arrays if a.dtype == np.int8]


def test_shipped_int8_models_use_seven_bit_weights(artifacts):
    extremes = {p.relative_to(artifacts).as_posix(): int8_weight_extremes(p) for p in sorted(artifacts.rglob("*.onnx"))}
    quantized = {name: e for name, e in extremes.items() if e}
    assert "vgg16/model.onnx" in quantized, f"the served VGG16 is expected to be int8: {sorted(extremes)}"
    assert {name: max(e) for name, e in quantized.items() if max(e) > SEVEN_BIT} == {}


def _tiny_conv(path: Path) -> None:
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 1, (8, 3, 3, 3)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8, 16, 16])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_quantize_int8_writes_seven_bit_weights(tmp_path):
    _tiny_conv(tmp_path / "fp32.onnx")
    batches = [np.random.default_rng(i).uniform(0, 1, (4, 3, 16, 16)).astype(np.float32) for i in range(3)]
    quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", batches)
    extremes = int8_weight_extremes(tmp_path / "int8.onnx")
    assert extremes and max(extremes) <= SEVEN_BIT
    assert max(extremes) > SEVEN_BIT // 2   # the 7 bits are used, not a degenerate scale

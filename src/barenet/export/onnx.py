"""A barenet ``Sequential`` as an ONNX model (``barenet export RUN_DIR --format onnx``).

Each layer becomes the ONNX operator with its semantics: Linear -> Gemm (transB=1),
Conv2d -> Conv, MaxPool2d / AvgPool2d -> MaxPool / AveragePool (count_include_pad=1, as
barenet and torch), AdaptiveAvgPool2d -> GlobalAveragePool, or two MatMuls with its
averaging matrices (any input and output size: y = A_h x A_w^T), BatchNorm1d/2d ->
BatchNormalization with the running statistics (inference), activations -> Relu /
LeakyRelu / Sigmoid / Tanh, Softmax / LogSoftmax (the official MNIST example's head) ->
Softmax / LogSoftmax on their axis, Flatten -> Flatten(axis=1). Dropout is the identity at
inference and is left out. The batch dimension is symbolic (``batch``); the graph has one
input ``input`` (the normalised images, (batch, 784) or (batch, C, H, W)) and one output
``logits``. Needs the ``onnx`` package (``pip install -e '.[onnx]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .. import __version__, nn
from ..errors import UserError
from ..nn.pool import adaptive_matrix
from . import DEFAULT_OPSET, MIN_OPSET

BATCH = "batch"


class ExportError(UserError):
    """A model barenet cannot express in ONNX (a layer without a converter, a bad opset)."""


class _Graph:
    """Nodes and initialisers being collected; ``shape`` tracks the per-sample shape."""

    def __init__(self, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.dtype, self.shape = dtype, shape
        self.current = "input"

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def add(self, op: str, name: str, extra_inputs: list[str] = (), **attrs: Any) -> None:
        out = f"{name}_out"
        self.nodes.append(
            helper.make_node(op, [self.current, *extra_inputs], [out], name=name, **attrs)
        )
        self.current = out


def _param(p: nn.Parameter | None, dtype: np.dtype) -> np.ndarray | None:
    return None if p is None else np.asarray(p.data, dtype)


def _linear(g: _Graph, layer: nn.Linear, name: str) -> None:
    ins = [g.const(f"{name}.weight", _param(layer.weight, g.dtype))]
    if layer.bias is not None:
        ins.append(g.const(f"{name}.bias", _param(layer.bias, g.dtype)))
    g.add("Gemm", name, ins, transB=1)
    g.shape = (layer.out_features,)


def _conv(g: _Graph, layer: nn.Conv2d, name: str) -> None:
    ins = [g.const(f"{name}.weight", _param(layer.weight, g.dtype))]
    if layer.bias is not None:
        ins.append(g.const(f"{name}.bias", _param(layer.bias, g.dtype)))
    (ph, pw) = layer.padding
    g.add(
        "Conv",
        name,
        ins,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=[ph, pw, ph, pw],
    )
    g.shape = (layer.out_channels, *layer.output_shape(*g.shape[1:]))


def _pool(g: _Graph, layer: nn.MaxPool2d | nn.AvgPool2d, name: str) -> None:
    (ph, pw) = layer.padding
    attrs: dict[str, Any] = {
        "kernel_shape": list(layer.kernel_size),
        "strides": list(layer.stride),
        "pads": [ph, pw, ph, pw],
    }
    if isinstance(layer, nn.AvgPool2d):
        attrs["count_include_pad"] = 1
    g.add("MaxPool" if isinstance(layer, nn.MaxPool2d) else "AveragePool", name, **attrs)
    g.shape = (g.shape[0], *layer.output_shape(*g.shape[1:]))


def _adaptive(g: _Graph, layer: nn.AdaptiveAvgPool2d, name: str) -> None:
    c, h, w = g.shape
    oh = h if layer.output_size[0] is None else layer.output_size[0]
    ow = w if layer.output_size[1] is None else layer.output_size[1]
    if oh == ow == 1:
        g.add("GlobalAveragePool", name)
    else:  # y = A_h @ (x @ A_w^T): MatMul broadcasts over (batch, C)
        a_w = g.const(f"{name}.a_w_t", adaptive_matrix(w, ow, np.float64).T.astype(g.dtype))
        a_h = g.const(f"{name}.a_h", adaptive_matrix(h, oh, np.float64).astype(g.dtype))
        g.add("MatMul", f"{name}_w", [a_w])
        out = f"{name}_out"
        g.nodes.append(helper.make_node("MatMul", [a_h, g.current], [out], name=f"{name}_h"))
        g.current = out
    g.shape = (c, oh, ow)


def _batchnorm(g: _Graph, layer: nn.BatchNorm1d | nn.BatchNorm2d, name: str) -> None:
    n = layer.num_features
    bufs = layer._buffers
    scale = _param(layer.weight, g.dtype) if layer.weight is not None else np.ones(n, g.dtype)
    bias = _param(layer.bias, g.dtype) if layer.bias is not None else np.zeros(n, g.dtype)
    ins = [
        g.const(f"{name}.weight", scale),
        g.const(f"{name}.bias", bias),
        g.const(f"{name}.running_mean", np.asarray(bufs["running_mean"], g.dtype)),
        g.const(f"{name}.running_var", np.asarray(bufs["running_var"], g.dtype)),
    ]
    g.add("BatchNormalization", name, ins, epsilon=float(layer.eps))


def _elementwise(op: str) -> Callable[[_Graph, nn.Module, str], None]:
    def convert(g: _Graph, layer: nn.Module, name: str) -> None:
        if isinstance(layer, nn.LeakyReLU):
            g.add(op, name, alpha=float(layer.negative_slope))
        else:
            g.add(op, name)

    return convert


def _softmax(g: _Graph, layer: nn.Softmax | nn.LogSoftmax, name: str) -> None:
    """Softmax / LogSoftmax along ``dim`` (opset 13+: one axis, as barenet and torch)."""
    if layer.dim is None:
        raise ExportError(f"layer {name}: {type(layer).__name__} needs an explicit dim")
    g.add(type(layer).__name__, name, axis=int(layer.dim))


def _flatten(g: _Graph, layer: nn.Flatten, name: str) -> None:
    if (layer.start_dim, layer.end_dim) != (1, -1):  # ONNX's Flatten always gives 2-D
        raise ExportError(f"layer {name}: only Flatten(start_dim=1, end_dim=-1) maps to ONNX")
    g.add("Flatten", name, axis=1)
    g.shape = (int(np.prod(g.shape)),)


def _skip(g: _Graph, layer: nn.Module, name: str) -> None:
    """Dropout at inference, and Identity: nothing to compute."""


CONVERTERS: dict[type, Callable[[_Graph, Any, str], None]] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv,
    nn.MaxPool2d: _pool,
    nn.AvgPool2d: _pool,
    nn.AdaptiveAvgPool2d: _adaptive,
    nn.BatchNorm1d: _batchnorm,
    nn.BatchNorm2d: _batchnorm,
    nn.ReLU: _elementwise("Relu"),
    nn.LeakyReLU: _elementwise("LeakyRelu"),
    nn.Sigmoid: _elementwise("Sigmoid"),
    nn.Tanh: _elementwise("Tanh"),
    nn.Softmax: _softmax,
    nn.LogSoftmax: _softmax,
    nn.Flatten: _flatten,
    nn.Dropout: _skip,
    nn.Dropout2d: _skip,
    nn.Identity: _skip,
}

_ONNX_DTYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


def to_onnx(
    model: nn.Sequential,
    input_shape: tuple[int, ...],
    opset: int = DEFAULT_OPSET,
    metadata: dict[str, str] | None = None,
    name: str = "barenet",
    dtype: np.dtype | type | None = None,
) -> onnx.ModelProto:
    """The ONNX model of ``model`` in eval mode, for per-sample ``input_shape`` ((784,)
    or (C, H, W)); checked with ``onnx.checker.check_model(full_check=True)``. ``dtype``
    (float32 or float64) casts the weights, input and output; default: the model's.
    onnxruntime's CPU has no float64 Conv or pooling: export such a model in float32."""
    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ExportError(
            f"opset {opset} not supported: choose {MIN_OPSET}..{onnx.defs.onnx_opset_version()}"
        )
    params = model.parameters()
    if dtype is None:
        dtype = params[0].dtype if params else np.float32
    dtype = np.dtype(dtype)
    if dtype not in _ONNX_DTYPES:
        raise ExportError(f"cannot export {dtype} weights (float32 or float64 only)")
    g = _Graph(dtype, tuple(input_shape))
    for i, layer in enumerate(getattr(model, "layers", [model])):
        convert = CONVERTERS.get(type(layer))
        if convert is None:
            raise ExportError(f"layer {i} ({type(layer).__name__}) has no ONNX converter")
        convert(g, layer, str(i))
    if g.current == "input":  # an all-identity model still needs one node
        g.add("Identity", "identity")
    g.nodes[-1].output[0] = "logits"
    elem = _ONNX_DTYPES[dtype]
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("input", elem, [BATCH, *input_shape])],
        [helper.make_tensor_value_info("logits", elem, [BATCH, *g.shape])],
        initializer=g.inits,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="barenet",
        producer_version=__version__,
    )
    # onnxruntime accepts IR versions up to what its opsets know; the onnx package may
    # write a newer one than the runtime a user has
    proto.ir_version = min(proto.ir_version, _ir_version_for(opset))
    for k, v in (metadata or {}).items():
        proto.metadata_props.add(key=k, value=str(v))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _ir_version_for(opset: int) -> int:
    """The oldest IR version that holds ``opset`` (onnx's own version table)."""
    for row in onnx.helper.VERSION_TABLE:  # (release, ir, opset, ml opset[, training])
        if row[2] >= opset:
            return row[1]
    return onnx.IR_VERSION


def export_run(run_dir: str | Path, out: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Write the ONNX model of a run folder to ``out`` (atomically); returns the path.

    Always float32, what every ONNX runtime runs (a ``train.dtype: float64`` run is cast:
    onnxruntime's CPU has no float64 Conv). The model's metadata names the dataset, class
    names and the input normalisation.
    """
    import json

    from ..builders import input_shape
    from ..data import CLASS_NAMES
    from ..data.transforms import DATASET_STATS
    from ..fileio import atomic_write_bytes
    from ..runner import load_run

    cfg, model = load_run(run_dir)
    meta = {
        "dataset": cfg.data.dataset,
        "classes": json.dumps(CLASS_NAMES[cfg.data.dataset]),
        "preprocess": cfg.data.preprocess,
        "dataset_mean_std": json.dumps(DATASET_STATS[cfg.data.dataset]),
        "input": "pixels/255 normalised by `preprocess`; images as barenet.data.images makes them",
    }
    proto = to_onnx(model, input_shape(cfg.model), opset, meta, name=cfg.name, dtype=np.float32)
    return atomic_write_bytes(out, proto.SerializeToString())

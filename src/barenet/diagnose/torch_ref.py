"""The PyTorch twin of a barenet layer (when there is one), for gradcheck's "vs torch" column.

Only barenet's own classes have twins; a user's layer gets none. Weights and BatchNorm
statistics are copied in, so outputs and gradients must agree to float64 rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import nn

if TYPE_CHECKING:
    from .gradcheck import GradcheckReport


def torch_twin(mod: Any, torch_nn: Any) -> Any | None:
    """The torch module computing what ``mod`` computes (in its mode), or None."""
    t = torch_nn
    if isinstance(mod, nn.Sequential):
        parts = [torch_twin(m, t) for m in mod.layers]
        return None if any(p is None for p in parts) else t.Sequential(*parts)
    if isinstance(mod, nn.Linear):
        return t.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
    if isinstance(mod, nn.Conv2d):
        return t.Conv2d(
            mod.in_channels,
            mod.out_channels,
            mod.kernel_size,
            stride=mod.stride,
            padding=mod.padding,
            dilation=mod.dilation,
            bias=mod.bias is not None,
        )
    if isinstance(mod, nn.MaxPool2d):
        return t.MaxPool2d(mod.kernel_size, mod.stride, mod.padding)
    if isinstance(mod, nn.AvgPool2d):
        return t.AvgPool2d(mod.kernel_size, mod.stride, mod.padding)
    if isinstance(mod, nn.AdaptiveAvgPool2d):
        return t.AdaptiveAvgPool2d(mod.output_size)
    if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
        cls = t.BatchNorm1d if isinstance(mod, nn.BatchNorm1d) else t.BatchNorm2d
        return cls(
            mod.num_features, eps=mod.eps, momentum=mod.momentum, affine=mod.weight is not None
        )
    if isinstance(mod, nn.Dropout):
        return None if mod.training else t.Identity()
    if isinstance(mod, nn.LeakyReLU):
        return t.LeakyReLU(mod.negative_slope)
    if isinstance(mod, nn.LogSoftmax | nn.Softmax):
        return getattr(t, type(mod).__name__)(mod.dim)
    simple = {
        nn.ReLU: t.ReLU,
        nn.Sigmoid: t.Sigmoid,
        nn.Tanh: t.Tanh,
        nn.Identity: t.Identity,
        nn.Flatten: t.Flatten,
    }
    if isinstance(mod, nn.Loss) and mod.reduction == "none":
        return None  # compared as scalars only
    if type(mod) is nn.MSELoss:
        return t.MSELoss(reduction=mod.reduction)
    if type(mod) in simple:
        return simple[type(mod)]()
    if type(mod) is nn.NLLLoss:
        import torch

        weight = None if mod.weight is None else torch.from_numpy(mod.weight)
        return t.NLLLoss(weight, ignore_index=mod.ignore_index, reduction=mod.reduction)
    if type(mod) is nn.CrossEntropyLoss:
        import torch

        weight = None if mod.weight is None else torch.from_numpy(mod.weight)
        return t.CrossEntropyLoss(
            weight,
            ignore_index=mod.ignore_index,
            reduction=mod.reduction,
            label_smoothing=mod.label_smoothing,
        )
    return None


def compare_with_torch(
    mod: Any, x: np.ndarray, report: GradcheckReport, target: Any = None, r: Any = None
) -> None:
    """Fill ``report``'s torch column: max |barenet - torch| per gradient, and the output's."""
    try:
        import torch
    except ImportError:
        report.torch = "not compared (PyTorch is not installed)"
        return
    twin = torch_twin(mod, torch.nn)
    if twin is None:
        layers = list(mod.modules()) if isinstance(mod, nn.Module) else [mod]
        alone = [m for m in layers if not isinstance(m, nn.Sequential)]
        odd = next((m for m in alone if torch_twin(m, torch.nn) is None), mod)
        why = "in training mode" if isinstance(odd, nn.Dropout) else "has no PyTorch counterpart"
        report.torch = f"not compared ({type(odd).__name__} {why})"
        return
    twin = twin.double()
    if isinstance(mod, nn.Module):
        state = {k: torch.from_numpy(np.array(v)) for k, v in mod.state_dict().items()}
        twin.load_state_dict(state, strict=False)
        twin.train(mod.training)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    if isinstance(mod, nn.Loss):
        tt = torch.from_numpy(np.asarray(target))
        out = twin(xt, tt if tt.dtype == torch.int64 else tt.double())
        ours = np.float64(mod.forward(x, target))
        out.backward()
        grads = {"input": mod.backward()}
    else:
        mod.zero_grad()
        ours = mod.forward(x)
        out = twin(xt)
        out.backward(torch.from_numpy(r))
        from .gradcheck import _request_input_grad

        grads = {"input": _request_input_grad(mod)(r.copy())}
        grads.update({n: p.grad for n, p in mod.named_parameters()})
    ref = {"input": xt.grad} | {n: p.grad for n, p in twin.named_parameters()}
    report.output_torch_diff = float(np.max(np.abs(ours - out.detach().numpy())))
    for row in report.rows:
        a, b = grads.get(row.name), ref.get(row.name)
        if a is not None and b is not None and np.shape(a) == tuple(b.shape):
            row.torch_diff = float(np.max(np.abs(np.asarray(a) - b.numpy()), initial=0.0))
    report.torch = (
        f"compared with {_torch_name(twin)}: max |output diff| {report.output_torch_diff:.1e}"
    )


def _torch_name(twin: Any) -> str:
    return f"torch.nn.{type(twin).__name__}"

"""The Module API against torch.nn.Module on the same architecture: state-dict key order,
``load_state_dict`` (strict and not: the keys it reports, in torch's order, and the
RuntimeError torch code catches), ``parameters()`` / ``buffers()`` / their named forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from barenet import nn


def models(seed: int):
    """One barenet and one torch model of the same random architecture: conv and batch
    norm blocks, a flatten, linear layers with batch norm between (buffers mid-way)."""
    rng = np.random.default_rng(seed)
    c, k, n_blocks, hidden = (int(v) for v in rng.integers(1, 4, size=4))
    ours, theirs, ch = [], [], 1
    for _ in range(n_blocks):
        ours += [nn.Conv2d(ch, c, k, padding=k // 2, rng=rng), nn.BatchNorm2d(c), nn.ReLU()]
        theirs += [torch.nn.Conv2d(ch, c, k, padding=k // 2), torch.nn.BatchNorm2d(c)]
        theirs += [torch.nn.ReLU()]
        ch = c
    feats = c * 4 * 4
    ours += [nn.Flatten(), nn.Linear(feats, hidden, rng=rng), nn.BatchNorm1d(hidden)]
    ours += [nn.Linear(hidden, 2, rng=rng)]
    theirs += [torch.nn.Flatten(), torch.nn.Linear(feats, hidden), torch.nn.BatchNorm1d(hidden)]
    theirs += [torch.nn.Linear(hidden, 2)]
    return nn.Sequential(*ours), torch.nn.Sequential(*theirs)


@pytest.mark.parametrize("seed", range(4))
def test_names_and_order_match_torch(seed: int) -> None:
    ours, theirs = models(seed)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for kw in [{}, {"prefix": "net"}, {"prefix": "net", "recurse": False}]:
        assert [n for n, _ in ours.named_parameters(**kw)] == [
            n for n, _ in theirs.named_parameters(**kw)
        ]
        assert [n for n, _ in ours.named_buffers(**kw)] == [
            n for n, _ in theirs.named_buffers(**kw)
        ]
    assert len(list(ours.buffers())) == len(list(theirs.buffers()))
    bn = ours[1]
    assert [n for n, _ in bn.named_parameters(recurse=False)] == ["weight", "bias"]
    assert next(ours.parameters()) is ours[0].weight  # torch's next(model.parameters())
    params = ours.parameters()
    assert [next(params), next(params)] == [ours[0].weight, ours[0].bias]
    assert len(ours.parameters()) == len(list(theirs.parameters()))


@pytest.mark.parametrize("seed", range(4))
def test_load_state_dict_reports_keys_as_torch(seed: int) -> None:
    """strict=False: the same missing and unexpected keys, in the same order; strict=True:
    a RuntimeError, as torch's (and still a ValueError, as barenet's was)."""
    ours, theirs = models(seed)
    rng = np.random.default_rng(seed)
    keys = list(theirs.state_dict())
    dropped = [keys[i] for i in sorted(rng.choice(len(keys), size=3, replace=False))]
    extra = ["zz.weight", "aa.bias"]
    state = {k: v for k, v in ours.state_dict().items() if k not in dropped}
    tstate = {k: v for k, v in theirs.state_dict().items() if k not in dropped}
    for k in extra:
        state[k], tstate[k] = np.zeros(2), torch.zeros(2)
    got, want = ours.load_state_dict(state, strict=False), theirs.load_state_dict(tstate, False)
    assert got.missing_keys == want.missing_keys
    assert got.unexpected_keys == want.unexpected_keys
    with pytest.raises(RuntimeError):
        theirs.load_state_dict(tstate)
    with pytest.raises(RuntimeError, match="missing.*unexpected") as info:
        ours.load_state_dict(state)
    assert isinstance(info.value, ValueError)
    shape = dict(ours.state_dict(), **{keys[0]: np.zeros((1, 1, 9, 9), np.float32)})
    with pytest.raises(RuntimeError, match="shape mismatch"):  # strict or not, as torch
        ours.load_state_dict(shape, strict=False)

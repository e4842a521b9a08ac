"""Module / Parameter / Sequential: naming, state dicts, modes, grads, dtype casting."""

from __future__ import annotations

import numpy as np
import pytest

from barenet import nn
from barenet.nn import CrossEntropyLoss, Dropout, Linear, Module, Parameter, ReLU, Sequential


def mlp(seed: int = 0, dtype: type = np.float32) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(
        Linear(6, 5, init="default", rng=rng, dtype=dtype),
        ReLU(),
        Linear(5, 3, init="default", rng=rng, dtype=dtype),
    )


class WithBuffers(Module):
    """A custom module: a named sub-Sequential, a named head, a float and an int buffer."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.features = Sequential(Linear(4, 3, rng=rng), ReLU())
        self.head = Linear(3, 2, rng=rng)
        self.register_buffer("running_mean", np.arange(3, dtype=np.float32))
        self.register_buffer("count", np.array(7, dtype=np.int64))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.head(self.features(x))


# -- names -----------------------------------------------------------------------------------


def test_state_dict_names_sequential() -> None:
    assert list(mlp().state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_state_dict_names_nested_sequential() -> None:
    rng = np.random.default_rng(0)
    model = Sequential(
        Linear(4, 4, rng=rng),
        Sequential(Linear(4, 3, rng=rng), ReLU(), Sequential(Linear(3, 2, rng=rng))),
    )
    assert [n for n, _ in model.named_parameters()] == [
        "0.weight",
        "0.bias",
        "1.0.weight",
        "1.0.bias",
        "1.2.0.weight",
        "1.2.0.bias",
    ]
    assert [n for n, _ in model.named_modules()] == ["", "0", "1", "1.0", "1.1", "1.2", "1.2.0"]


def test_named_attributes_and_buffers() -> None:
    m = WithBuffers()
    state = m.state_dict()
    assert list(state) == [  # torch's order: module by module, own buffers after own params
        "running_mean",
        "count",
        "features.0.weight",
        "features.0.bias",
        "head.weight",
        "head.bias",
    ]
    assert len(m.parameters()) == 4  # buffers are not parameters
    assert dict(m.named_buffers())["count"].dtype == np.int64


def test_parameter_basics() -> None:
    lin = Linear(3, 2)
    assert not lin.weight.no_decay and lin.bias.no_decay
    assert lin.weight.shape == (2, 3) and lin.weight.dtype == np.float32
    assert lin.weight.grad.shape == (2, 3) and not lin.weight.grad.any()
    assert Parameter(np.float64(2.5)).shape == ()  # a scalar parameter stays 0-d
    p = Parameter(np.ones((3, 4))[:, ::2])  # non-contiguous input is made contiguous
    assert p.data.flags.c_contiguous and p.grad.shape == (3, 2)


# -- state_dict / load_state_dict --------------------------------------------------------------


def test_state_dict_returns_copies() -> None:
    model = mlp()
    state = model.state_dict()
    before = model[0].weight.data.copy()
    state["0.weight"][...] = 123.0
    np.testing.assert_array_equal(model[0].weight.data, before)
    model[0].weight.data += 1.0
    assert not np.array_equal(state["0.weight"], model[0].weight.data)

    m = WithBuffers()
    s = m.state_dict()
    s["running_mean"][...] = -1
    np.testing.assert_array_equal(dict(m.named_buffers())["running_mean"], [0, 1, 2])


def test_load_state_dict_round_trip() -> None:
    a, b = mlp(seed=1), mlp(seed=2)
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    assert not np.allclose(a(x), b(x))
    state = a.state_dict()
    b.load_state_dict(state)
    np.testing.assert_array_equal(a(x), b(x))
    for name, arr in b.state_dict().items():
        np.testing.assert_array_equal(arr, state[name])
    # loading copies: the dict and the model do not share memory afterwards
    state["0.weight"][...] = 0
    assert b[0].weight.data.any()


def test_load_state_dict_round_trip_buffers() -> None:
    src, dst = WithBuffers(), WithBuffers()
    src._buffers["running_mean"][...] = [5, 6, 7]
    src._buffers["count"][...] = 42
    src.head.bias.data[...] = 9
    dst.load_state_dict(src.state_dict())
    bufs = dict(dst.named_buffers())
    np.testing.assert_array_equal(bufs["running_mean"], [5, 6, 7])
    assert int(bufs["count"]) == 42
    np.testing.assert_array_equal(dst.head.bias.data, [9, 9])


def test_load_state_dict_missing_key() -> None:
    model = mlp()
    state = model.state_dict()
    del state["2.bias"]
    with pytest.raises(ValueError, match=r"2\.bias"):
        model.load_state_dict(state)


def test_load_state_dict_unexpected_key() -> None:
    model = mlp()
    state = model.state_dict()
    state["5.weight"] = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"5\.weight"):
        model.load_state_dict(state)


def test_load_state_dict_wrong_shape_names_key_and_changes_nothing() -> None:
    model = mlp(seed=0)
    before = model.state_dict()
    state = mlp(seed=5).state_dict()
    state["2.weight"] = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"2\.weight"):
        model.load_state_dict(state)
    # every shape is checked before anything is copied
    for name, arr in model.state_dict().items():
        np.testing.assert_array_equal(arr, before[name], err_msg=name)


def test_load_state_dict_dtypes_cast_like_torch_but_never_float_into_int() -> None:
    m = WithBuffers()
    state = {
        k: np.asarray(v, dtype=np.float64) if k != "count" else v for k, v in m.state_dict().items()
    }
    state["head.bias"] = np.array([0.25, -0.5])  # float64 into a float32 model: cast
    m.load_state_dict(state)
    assert m.head.bias.data.dtype == np.float32 and m.head.bias.data.tolist() == [0.25, -0.5]
    for key, bad in [("count", np.array(7.5)), ("head.bias", np.array(["a", "b"]))]:
        wrong = dict(state, **{key: bad})
        with pytest.raises(ValueError, match=rf"dtype mismatch for '{key}'"):
            m.load_state_dict(wrong)
    assert int(dict(m.named_buffers())["count"]) == 7


def test_tied_parameters_and_shared_modules_are_listed_once() -> None:
    rng = np.random.default_rng(0)
    first, last = Linear(4, 4, rng=rng), Linear(4, 4, rng=rng)
    last.weight = first.weight  # tied, as PyTorch's named_parameters() dedups them
    model = Sequential(first, ReLU(), last)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert model.num_parameters() == 16 + 4 + 4
    outer = Module()
    outer.a, outer.b = first, first  # one module reachable twice
    assert [n for n, _ in outer.named_modules()] == ["", "a"]


def test_tied_model_loads_state_dicts_with_one_or_every_name() -> None:
    # barenet's state_dict names a tied weight once; PyTorch's names it under every module
    # that holds it. Both load; a tied weight named by neither is missing.
    def tied(seed: int) -> Sequential:
        rng = np.random.default_rng(seed)
        first, last = Linear(4, 4, rng=rng), Linear(4, 4, rng=rng)
        last.weight = first.weight
        return Sequential(first, ReLU(), last)

    model, source = tied(0), tied(1)
    ours = source.state_dict()
    assert sorted(ours) == ["0.bias", "0.weight", "2.bias"]
    model.load_state_dict(ours)
    np.testing.assert_array_equal(model[2].weight.data, source[0].weight.data)
    assert model[2].weight is model[0].weight  # still tied after loading
    theirs = dict(ours, **{"2.weight": ours["0.weight"]})  # torch-style: both names
    assert sorted(n for n, _ in model.named_parameters(remove_duplicate=False)) == sorted(theirs)
    model.load_state_dict(theirs)
    only_alias = {k: v for k, v in theirs.items() if k != "0.weight"}
    model.load_state_dict(only_alias)
    with pytest.raises(ValueError, match=r"missing \['0.weight'\]"):
        model.load_state_dict({k: v for k, v in ours.items() if k != "0.weight"})


def test_sequential_refuses_one_instance_at_two_positions() -> None:
    # Layers cache their input for backward: a reused instance would silently give
    # wrong gradients, so it is refused up front (construction and append alike).
    relu = ReLU()
    with pytest.raises(ValueError, match="ReLU instance is already in the Sequential"):
        Sequential(Linear(3, 3), relu, Linear(3, 3), relu)
    model = Sequential(Linear(3, 3), relu)
    with pytest.raises(ValueError, match="already in the Sequential"):
        model.append(relu)
    with pytest.raises(ValueError, match="ReLU instance is already"):  # nested, too
        Sequential(Sequential(Linear(3, 3), relu), Linear(3, 3), Sequential(relu))
    with pytest.raises(TypeError, match="takes Modules"):
        Sequential(Linear(3, 3), np.tanh)


# -- modes, counts, grads, dtype --------------------------------------------------------------


def test_train_eval_propagate_to_nested_children() -> None:
    inner = Sequential(Linear(3, 3), Dropout(0.5))
    model = Sequential(Linear(3, 3), inner, Dropout(0.5))
    assert model.eval() is model
    assert all(not m.training for m in model.modules())
    assert not inner[1].training
    assert model.train() is model
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not inner.training and not model[2].training
    # eval mode really switches the nested dropout to the identity
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(inner[1](x), x)


def test_num_parameters() -> None:
    model = Sequential(Linear(784, 256), ReLU(), Linear(256, 10))
    assert model.num_parameters() == 784 * 256 + 256 + 256 * 10 + 10
    assert Linear(5, 7, bias=False).num_parameters() == 35
    # torch's idioms for the same count
    assert sum(p.numel() for p in model.parameters()) == model.num_parameters()
    model[0].requires_grad_(False)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 256 * 10 + 10
    assert [p.ndim for p in model.parameters()] == [2, 1, 2, 1]


def test_zero_grad() -> None:
    model = mlp()
    for p in model.parameters():
        p.grad[...] = 3.0
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_grads_accumulate_across_backward_calls() -> None:
    model = mlp(dtype=np.float64)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((5, 6)), rng.integers(0, 3, 5)
    loss_fn = CrossEntropyLoss()

    def step() -> None:
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())

    model.zero_grad()
    step()
    once = [p.grad.copy() for p in model.parameters()]
    assert all(g.any() for g in once)
    step()
    for g1, p in zip(once, model.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, 2 * g1, rtol=1e-12)


def test_zero_grad_is_lazy_and_a_cleared_grad_is_written_once() -> None:
    p = Parameter(np.ones((2, 3), np.float32))
    arr = p._grad
    arr[...] = 5.0  # stale values under a cleared flag
    p.zero_grad()
    assert p.grad_to_write() is arr  # cleared: the caller writes the whole gradient
    assert p.grad_to_write() is None  # written since: later backwards add
    p.zero_grad()
    assert not p.grad.any() and p.grad is arr  # reading fills the zeros
    assert p.grad_to_write() is None
    p.grad = np.full((2, 3), 2.0, np.float32)  # assigning counts as written
    assert p.grad_to_write() is None and p.grad[0, 0] == 2.0
    p.grad = None  # torch's way of clearing: zeros from now on, written by the next backward
    assert p.grad_to_write() is not None
    p.grad = None
    assert not p.grad.any()
    with pytest.raises(ValueError, match="shape"):
        p.grad = np.zeros(3)


def test_a_written_gradient_equals_an_added_one() -> None:
    # Linear writes dW and db into cleared grads; into uncleared zeros it adds: same values
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((7, 6)), rng.integers(0, 3, 7)
    loss_fn = CrossEntropyLoss()
    grads = []
    for clear in (True, False):
        model = mlp(dtype=np.float64)
        for p in model.parameters():
            if clear:
                p.zero_grad()  # backward writes
            else:
                p.grad[...] = 0  # zeros, but not cleared: backward adds
        assert (model[0].weight._cleared, model[0].bias._cleared) == (clear, clear)
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        grads.append([p.grad.copy() for p in model.parameters()])
    for written, added in zip(*grads, strict=True):
        np.testing.assert_allclose(written, added, rtol=1e-13, atol=1e-15)


def test_a_gradient_of_another_dtype_is_cast_like_the_input() -> None:
    model = mlp(dtype=np.float32)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    g = rng.standard_normal((4, 3))  # float64, e.g. from a loss of the user's own
    model.zero_grad()
    model(x)
    dx = model.backward(g, input_grad=True)
    assert dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 and p.grad.any() for p in model.parameters())


def test_to_float64() -> None:
    model = mlp(dtype=np.float32)
    w32 = model[0].weight.data.copy()
    m2 = WithBuffers().to(np.float64)
    assert model.to(np.float64) is model
    for name, p in model.named_parameters():
        assert p.data.dtype == np.float64 and p.grad.dtype == np.float64, name
        assert p.grad.shape == p.data.shape and not p.grad.any()
    np.testing.assert_array_equal(model[0].weight.data, w32.astype(np.float64))
    x = np.random.default_rng(5).standard_normal((2, 6))
    assert model(x).dtype == np.float64
    bufs = dict(m2.named_buffers())
    assert bufs["running_mean"].dtype == np.float64 and bufs["count"].dtype == np.int64


def test_float_double_and_cpu_like_torch() -> None:
    model = mlp(dtype=np.float32)
    x = np.random.default_rng(5).standard_normal((2, 6))
    model(x.astype(np.float32))
    model.backward(np.ones((2, 3), np.float32))  # a float32 gradient now held
    assert model.double() is model and model.to("cpu") is model and model.to("cpu:0") is model
    for p in model.parameters():
        assert p.data.dtype == np.float64 and p.grad.dtype == np.float64 and not p.grad.any()
    model(x)
    model.backward(np.ones((2, 3)))  # written into float64 gradients
    assert all(p.grad.dtype == np.float64 for p in model.parameters())
    assert model.float()[0].weight.data.dtype == np.float32
    with pytest.raises(TypeError, match="CPU"):
        model.to("cuda")
    with pytest.raises(TypeError, match="floating"):
        model.to(np.int32)


def test_repr_lists_children() -> None:
    text = repr(mlp())
    assert "Sequential" in text and "(0): Linear(6, 5, bias=True)" in text and "(1): ReLU()" in text


def test_sequential_skips_input_grad_unless_asked() -> None:
    """Like torch for an input without requires_grad: the same parameter grads, no dx, and
    the first trainable layer's dx product is not computed; input_grad=True returns dx."""
    from barenet.nn import Flatten

    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((4, 2, 3)), rng.integers(0, 3, 4)
    grads, calls = [], []
    for ask in (True, False, None):
        model = Sequential(Flatten(), mlp(seed=1, dtype=np.float64))
        first = model[1][0]
        real = first.backward

        def spy(g, _real=real, _first=first):
            calls.append(_first.needs_input_grad)
            return _real(g)

        first.backward = spy
        loss_fn = CrossEntropyLoss()
        loss_fn(model(x), y)
        g = loss_fn.backward()
        dx = model.backward(g) if ask is None else model.backward(g, input_grad=ask)
        assert (dx is None) == (not ask)
        if ask:
            assert dx.shape == x.shape
        grads.append({n: p.grad.copy() for n, p in model.named_parameters()})
    assert calls == [True, False, False]  # the skipped layer was told not to compute dx
    for name, g in grads[0].items():
        assert g.any(), name
        np.testing.assert_array_equal(grads[1][name], g, err_msg=name)
        np.testing.assert_array_equal(grads[2][name], g, err_msg=name)


def test_input_grad_attribute_and_nested_sequentials() -> None:
    """model.input_grad = True opts in once; a nested Sequential after the first layer
    still passes its dx down; a Sequential without parameters does nothing by default."""
    rng = np.random.default_rng(3)
    inner = Sequential(Linear(5, 4, rng=1, dtype=np.float64), ReLU())
    model = Sequential(Linear(3, 5, rng=2, dtype=np.float64), ReLU(), inner)
    x = rng.standard_normal((2, 3))
    model(x)
    assert model.backward(np.ones((2, 4))) is None
    assert model[0].weight.grad.any()  # the gradient reached the first layer through inner
    model.input_grad = True
    model(x)
    assert model.backward(np.ones((2, 4))).shape == (2, 3)
    assert Sequential(ReLU()).backward(np.ones(3)) is None


def test_input_of_another_dtype_is_cast_once_never_float64_compute() -> None:
    from barenet.nn import BatchNorm1d, Conv2d, Flatten

    model = Sequential(Linear(4, 3, rng=0), ReLU(), Linear(3, 2, rng=1))
    x64 = np.random.default_rng(0).standard_normal((5, 4))
    y = model(x64)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, model(x64.astype(np.float32)), rtol=1e-6)
    assert model(np.ones((2, 4), np.uint8)).dtype == np.float32
    cnn = Sequential(Conv2d(1, 2, 3, rng=0), Flatten(), BatchNorm1d(8))
    assert cnn(np.zeros((3, 1, 4, 4))).dtype == np.float32
    assert BatchNorm1d(3)(np.ones((4, 3))).dtype == np.float32
    with pytest.raises(TypeError, match="Linear takes numbers"):
        model(np.array([["a"] * 4]))


def test_missing_backward_names_the_class_and_says_how() -> None:
    class NoBackward(Module):
        def forward(self, x):
            return x

    with pytest.raises(NotImplementedError, match="NoBackward has no backward.*adds.*returns"):
        NoBackward().backward(np.ones(2))
    with pytest.raises(NotImplementedError, match="Module has no forward"):
        Module()(np.ones(2))


def test_load_state_dict_strict_false_returns_the_keys_it_skipped() -> None:
    model = Sequential(Linear(4, 3, rng=0), ReLU(), Linear(3, 2, rng=1))
    source = Sequential(Linear(4, 3, rng=5))
    state = {**source.state_dict(), "extra.weight": np.zeros(1, np.float32)}
    with pytest.raises(ValueError, match="missing.*2.bias.*unexpected.*extra.weight"):
        model.load_state_dict(state)
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["2.weight", "2.bias"]  # model order, as torch
    assert result.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(model[0].weight.data, source[0].weight.data)
    assert model.load_state_dict(model.state_dict()) == ([], [])
    with pytest.raises(ValueError, match="shape mismatch"):  # shapes are checked either way
        model.load_state_dict({"0.weight": np.zeros((2, 2), np.float32)}, strict=False)


def test_module_list_names_like_torch() -> None:
    import torch

    from barenet.nn import ModuleList

    class Ours(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = ModuleList([nn.Linear(3, 3, rng=i) for i in range(2)])
            self.head = nn.Linear(3, 2, rng=9)

    class Theirs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(3, 3) for _ in range(2)])
            self.head = torch.nn.Linear(3, 2)

    ours, theirs = Ours(), Theirs()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    blocks = ours.blocks
    assert len(blocks) == 2 and isinstance(blocks[1:], ModuleList) and blocks[0] is list(blocks)[0]
    blocks.append(nn.ReLU()).extend([nn.Tanh()])
    blocks.insert(0, nn.Identity())
    assert [type(m).__name__ for m in blocks] == ["Identity", "Linear", "Linear", "ReLU", "Tanh"]
    with pytest.raises(TypeError, match="Modules"):
        blocks.append("relu")
    with pytest.raises(NotImplementedError, match="no forward"):
        blocks(np.zeros((1, 3)))


def test_a_plain_list_attribute_keeps_its_name() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = [nn.Linear(2, 2, rng=0)]  # only a Sequential's own list is positional

    assert list(Net().state_dict()) == ["layers.0.weight", "layers.0.bias"]
    assert list(nn.Sequential(nn.Linear(2, 2, rng=0)).state_dict()) == ["0.weight", "0.bias"]

"""BatchNorm1d / BatchNorm2d: gradients, running statistics, modes, state dict, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_module_grads

from barenet.nn import BatchNorm1d, BatchNorm2d, Conv2d, Sequential


def randomised(bn, rng):
    """Non-trivial gamma and beta so their gradients are exercised."""
    if bn.weight is not None:
        bn.weight.data[:] = rng.uniform(0.5, 1.5, bn.num_features)
        bn.bias.data[:] = rng.standard_normal(bn.num_features)
    return bn


@pytest.mark.parametrize(
    "cls, shape, affine",
    [
        (BatchNorm1d, (6, 4), True),
        (BatchNorm1d, (3, 2, 5), True),
        (BatchNorm1d, (5, 3), False),
        (BatchNorm2d, (3, 2, 4, 3), True),
        (BatchNorm2d, (2, 3, 3, 3), False),
    ],
)
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients(cls, shape, affine, training):
    rng = np.random.default_rng(30)
    bn = randomised(cls(shape[1], affine=affine, dtype=np.float64), rng)
    if not training:
        bn.forward(rng.standard_normal(shape) * 3 + 1)  # non-trivial running stats
        bn.eval()
    check_module_grads(bn, rng.standard_normal(shape) * 2 + 0.5, rng)


def test_train_mode_normalises_each_channel():
    rng = np.random.default_rng(31)
    x = rng.standard_normal((16, 3, 5, 5)) * np.array([1, 5, 0.1])[:, None, None] + 2
    y = BatchNorm2d(3, dtype=np.float64).forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)  # eps = 1e-5


def test_running_statistics_and_eval_mode():
    rng = np.random.default_rng(32)
    bn = BatchNorm1d(3, momentum=0.2, dtype=np.float64)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(4):
        x = rng.standard_normal((10, 3)) * 2 + 1
        bn.forward(x)
        mean = 0.8 * mean + 0.2 * x.mean(axis=0)
        var = 0.8 * var + 0.2 * x.var(axis=0, ddof=1)  # unbiased in the running estimate
    np.testing.assert_allclose(bn._buffers["running_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(bn._buffers["running_var"], var, rtol=1e-12)
    assert int(bn._buffers["num_batches_tracked"]) == 4
    bn.eval()
    x = rng.standard_normal((7, 3))
    np.testing.assert_allclose(bn.forward(x), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-12)
    assert int(bn._buffers["num_batches_tracked"]) == 4  # eval leaves the statistics alone
    np.testing.assert_allclose(bn._buffers["running_mean"], mean, rtol=1e-12)


def test_momentum_none_is_cumulative_average():
    rng = np.random.default_rng(33)
    bn = BatchNorm2d(2, momentum=None, dtype=np.float64)
    batches = [rng.standard_normal((4, 2, 3, 3)) + i for i in range(3)]
    for x in batches:
        bn.forward(x)
    expected = np.mean([x.mean(axis=(0, 2, 3)) for x in batches], axis=0)
    np.testing.assert_allclose(bn._buffers["running_mean"], expected, rtol=1e-12)


def test_state_dict_round_trip_includes_buffers():
    rng = np.random.default_rng(34)
    a = Sequential(Conv2d(1, 2, 3, rng=1), BatchNorm2d(2))
    for _ in range(3):
        a.forward(rng.standard_normal((4, 1, 6, 6)).astype(np.float32))
    state = a.state_dict()
    assert {"1.running_mean", "1.running_var", "1.num_batches_tracked"} <= set(state)
    assert state["1.num_batches_tracked"].dtype == np.int64 and state["1.num_batches_tracked"] == 3
    b = Sequential(Conv2d(1, 2, 3, rng=2), BatchNorm2d(2))
    b.load_state_dict(state)
    for name, value in b.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    a.eval(), b.eval()
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_to_float64_then_train_updates_the_new_buffers():
    bn = BatchNorm2d(2).to(np.float64)
    x = np.random.default_rng(35).standard_normal((4, 2, 3, 3)) + 3
    y = bn.forward(x)
    assert y.dtype == np.float64
    assert bn._buffers["running_mean"].dtype == np.float64
    assert np.all(bn.state_dict()["running_mean"] > 0.2)  # moved towards the batch mean 3


def test_float32_stays_float32():
    bn = BatchNorm2d(3)
    x = np.random.default_rng(36).standard_normal((4, 3, 5, 5)).astype(np.float32)
    y = bn.forward(x)
    dx = bn.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == bn.weight.grad.dtype == np.float32
    assert all(bn._buffers[k].dtype == np.float32 for k in ("running_mean", "running_var"))
    bn.eval()
    assert bn.forward(x).dtype == np.float32


def test_norm_params_skip_weight_decay_and_errors():
    bn = BatchNorm1d(4)
    assert bn.weight.no_decay and bn.bias.no_decay
    np.testing.assert_array_equal(bn.weight.data, 1)
    np.testing.assert_array_equal(bn.bias.data, 0)
    assert [n for n, _ in BatchNorm1d(4, affine=False).named_parameters()] == []
    with pytest.raises(ValueError, match="channels"):
        bn.forward(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="dims"):
        BatchNorm2d(4).forward(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="more than one value"):
        bn.forward(np.zeros((1, 4), np.float32))

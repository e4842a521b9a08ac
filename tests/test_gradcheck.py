"""barenet.gradcheck and `barenet gradcheck`: every barenet layer passes (and agrees with torch);
user layers whose backward is wrong by a factor, transposed or missing a term fail, naming the
tensor; bad input is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import barenet
from barenet import nn
from barenet.builders import build_model
from barenet.cli import main
from barenet.config import ModelConfig
from barenet.diagnose import GradcheckError

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [
    ("linear", lambda: nn.Linear(5, 4, rng=0), (3, 5)),
    ("linear_nobias", lambda: nn.Linear(5, 4, bias=False, rng=0), (3, 5)),
    ("conv", lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=0), (2, 2, 7, 6)),
    ("conv_dilated", lambda: nn.Conv2d(2, 2, 3, dilation=2, rng=0), (2, 2, 7, 7)),
    ("maxpool", lambda: nn.MaxPool2d(2), (2, 3, 6, 4)),
    ("maxpool_pad", lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 7)),
    ("avgpool", lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 2, 7, 7)),
    ("adaptive", lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 2, 5, 7)),
    ("bn1d", lambda: nn.BatchNorm1d(4), (6, 4)),
    ("bn2d", lambda: nn.BatchNorm2d(3), (4, 3, 3, 2)),
    ("bn2d_noaffine", lambda: nn.BatchNorm2d(3, affine=False), (4, 3, 3, 2)),
    ("relu", nn.ReLU, (4, 6)),
    ("leaky", lambda: nn.LeakyReLU(0.2), (4, 6)),
    ("sigmoid", nn.Sigmoid, (4, 6)),
    ("tanh", nn.Tanh, (4, 6)),
    ("identity", nn.Identity, (4, 6)),
    ("dropout", lambda: nn.Dropout(0.5, rng=0), (4, 6)),
    ("dropout2d", lambda: nn.Dropout2d(0.5, rng=0), (2, 3, 2, 2)),
    ("flatten", nn.Flatten, (2, 3, 2, 2)),
    ("log_softmax", lambda: nn.LogSoftmax(dim=1), (4, 6)),
    ("softmax_dim0", lambda: nn.Softmax(dim=0), (4, 3, 2)),
    ("cross_entropy", nn.CrossEntropyLoss, (5, 4)),
    ("cross_entropy_smooth", lambda: nn.CrossEntropyLoss(label_smoothing=0.1), (5, 4)),
    ("mse", nn.MSELoss, (3, 4)),
    ("nll", nn.NLLLoss, (5, 4)),
]


@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=[case[0] for case in LAYERS])
def test_every_barenet_layer_passes_and_matches_torch(name, make, shape) -> None:
    layer = make()
    report = barenet.gradcheck(layer, shape, seed=3, max_per_tensor=None)
    assert report.passed, report.table()
    names = [r.name for r in report.rows]
    assert names[0] == "input"
    assert names[1:] == [n for n, _ in getattr(layer, "named_parameters", list)()]
    assert all(r.checked == int(np.prod(r.shape)) for r in report.rows)
    # every layer here has a torch twin: outputs and gradients agree to rounding
    assert report.torch.startswith("compared with torch.nn."), report.torch
    assert report.output_torch_diff < 1e-12
    assert all(r.torch_diff is not None and r.torch_diff < 1e-10 for r in report.rows)


def test_eval_mode_batchnorm_and_the_original_module_is_untouched() -> None:
    bn = nn.BatchNorm1d(3)
    bn.forward(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32) * 3 + 1)
    before = bn.state_dict()
    report = barenet.gradcheck(bn, (5, 3), train=False)
    assert report.passed, report.table()
    assert bn.weight.data.dtype == np.float32  # checked on a float64 copy
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_builder_models_check_the_input_gradient_too() -> None:
    """A model's backward skips dL/d(input) by default (as torch does); gradcheck asks for it
    and leaves the user's model as it was."""
    cfg = ModelConfig(
        type="cnn",
        input_shape=(1, 6, 6),
        blocks=[{"channels": 2, "kernel": 3, "padding": 1, "batch_norm": True}],
        dense=[5, 3],
        dropout=0.3,
    )
    model = build_model(cfg, rng=1)
    x = np.random.default_rng(0).standard_normal((3, 1, 6, 6)).astype(np.float32)
    g = np.ones((3, 3), np.float32)
    model.forward(x)
    assert model.backward(g) is None and model.input_grad is False
    report = barenet.gradcheck(model, (3, 1, 6, 6), max_per_tensor=None)
    assert report.passed, report.table()
    assert report.rows[0].name == "input" and report.rows[0].checked == 3 * 36
    model.forward(x)
    assert model.backward(g) is None and model.input_grad is False  # the user's model as it was
    assert model.backward(g, input_grad=True).shape == x.shape
    mlp = build_model(ModelConfig(sizes=[6, 5, 4], activation="tanh"), rng=0)
    rep = barenet.gradcheck(mlp, (4, 6))
    assert rep.passed and rep.torch.startswith("compared with torch.nn.Sequential")


# -- three user layers with a deliberately wrong backward ----------------------------------
class SquareLinear(nn.Module):
    """y = x W^T + b with a square W (so a transposed gradient still has the right shape)."""

    def __init__(self, n: int = 5, bias_factor: float = 1.0, transpose: bool = False) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.weight = nn.Parameter(rng.standard_normal((n, n)))
        self.bias = nn.Parameter(rng.standard_normal(n))
        self.bias_factor, self.transpose = bias_factor, transpose

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return x @ self.weight.data.T + self.bias.data

    def backward(self, g: np.ndarray) -> np.ndarray:
        gw = g.T @ self._x
        self.weight.grad += gw.T if self.transpose else gw
        self.bias.grad += self.bias_factor * g.sum(axis=0)
        return g @ self.weight.data


class SwishMissingTerm(nn.Module):
    """y = x * sigmoid(x); the backward forgets x * s * (1 - s)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._s = 1 / (1 + np.exp(-x))
        return x * self._s

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * self._s


@pytest.mark.parametrize(
    ("layer", "wrong"),
    [
        (SquareLinear(bias_factor=2.0), "bias"),  # wrong by a factor
        (SquareLinear(transpose=True), "weight"),  # transposed
        (SwishMissingTerm(), "input"),  # missing a term
    ],
    ids=["factor", "transposed", "missing_term"],
)
def test_broken_user_layers_fail_naming_the_tensor(layer, wrong: str) -> None:
    report = barenet.gradcheck(layer, (4, 5))
    assert not report.passed
    assert report.failed() == [wrong]
    assert f"FAILED: {wrong}" in report.table()
    assert "no PyTorch counterpart" in report.torch
    row = next(r for r in report.rows if r.name == wrong)
    assert row.max_abs > 1e-3 and len(row.worst_index) == len(row.shape)
    assert SquareLinear().forward(np.ones((1, 5))).shape == (1, 5)
    assert barenet.gradcheck(SquareLinear(), (4, 5)).passed  # the same layer, unbroken


def test_wrong_shape_and_none_gradients_fail() -> None:
    class NoInputGrad(nn.Identity):
        def backward(self, g):
            return None

    class WrongShape(nn.Identity):
        def backward(self, g):
            return g[:, :1]

    r1 = barenet.gradcheck(NoInputGrad(), (2, 3))
    r2 = barenet.gradcheck(WrongShape(), (2, 3))
    assert r1.failed() == ["input"] and r1.rows[0].note == "no gradient"
    assert r2.failed() == ["input"] and "shape" in r2.rows[0].note


def test_bad_input_raises_gradcheck_error() -> None:
    with pytest.raises(GradcheckError, match="not a barenet Module"):
        barenet.gradcheck(object(), (2, 3))
    with pytest.raises(GradcheckError, match="bad input shape"):
        barenet.gradcheck(nn.ReLU(), (0, 3))
    with pytest.raises(GradcheckError, match="forward failed"):
        barenet.gradcheck(nn.Linear(3, 2), (2, 4))
    with pytest.raises(GradcheckError, match="returned float32"):

        class Float32(nn.Identity):
            def forward(self, x):
                return x.astype(np.float32)

        barenet.gradcheck(Float32(), (2, 3))
    with pytest.raises(GradcheckError, match="different outputs"):

        class Noisy(nn.Identity):
            def forward(self, x):
                return x + np.random.default_rng().standard_normal(x.shape)

        barenet.gradcheck(Noisy(), (2, 3))


# -- the command ---------------------------------------------------------------------------
EXAMPLE = str(ROOT / "examples" / "my_layer.py")


def test_cli_fails_the_readme_layer_and_passes_the_fixed_one(capsys) -> None:
    assert main(["gradcheck", f"{EXAMPLE}:Swish", "--input-shape", "4,6"]) == 1
    out, err = capsys.readouterr()
    assert "FAIL" in out and err.strip() == "barenet: gradcheck failed: input"
    assert main(["gradcheck", f"{EXAMPLE}:FixedSwish", "--input-shape", "4,6"]) == 0
    assert main(["gradcheck", f"{EXAMPLE}:net", "--json"]) == 0  # shape guessed: (4, 20)
    out, err = capsys.readouterr()
    doc = json.loads(out.splitlines()[-1])
    assert doc["passed"] and doc["input_shape"] == [4, 20]
    assert [t["name"] for t in doc["tensors"]][:2] == ["input", "0.weight"]


@pytest.mark.parametrize(
    ("source", "spec", "shape", "message"),
    [
        ("raise RuntimeError('boom')\n", "m.py:x", None, "cannot import"),
        ("def f(:\n", "m.py:x", None, "SyntaxError"),
        ("x = 3\n", "m.py:x", None, "not a barenet Module"),
        ("x = 3\n", "m.py:y", None, "defines no 'y'"),
        ("from barenet import nn\nm = nn.Linear(3, 2)\n", "m.py:m", "2,x", "bad --input-shape"),
        ("from barenet import nn\nm = nn.Linear(3, 2)\n", "m.py:m", "2,4", "forward failed"),
        ("from barenet import nn\nm = nn.ReLU()\n", "m.py:m", None, "cannot guess"),
        ("import sys\nsys.exit(3)\n", "m.py:x", None, "SystemExit"),
        ("", "missing.py:x", None, "no Python file"),
        ("", "m.py", None, "expected FILE.py:NAME"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    tmp_path, capsys, source, spec, shape, message
) -> None:
    (tmp_path / "m.py").write_text(source)
    argv = ["gradcheck", str(tmp_path / spec)] + (["--input-shape", shape] if shape else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_the_commands_in_the_examples_docstring_work_as_written(capsys) -> None:
    # Its docstring showed `barenet gradcheck examples/my_layer.py:Swish` without
    # --input-shape, which stops with "cannot guess the input shape" (exit 2).
    import ast

    doc = ast.get_docstring(ast.parse(Path(EXAMPLE).read_text(encoding="utf-8"))) or ""
    lines = [ln.strip() for ln in doc.splitlines()]
    commands = [ln.split("#")[0].split() for ln in lines if ln.startswith("barenet gradcheck")]
    assert len(commands) == 3
    for argv in commands:
        argv = [a.replace("examples/my_layer.py", EXAMPLE) for a in argv[1:]]
        expected = 1 if argv[1].endswith(":Swish") else 0  # Swish is the broken one
        assert main(argv) == expected, capsys.readouterr().err


NAN_LAYERS = """
import numpy as np
from barenet.nn import Module

class Sqrt(Module):  # NaN for the negative half of a standard-normal input
    def forward(self, x):
        self._x = x
        return np.sqrt(x)

    def backward(self, g):
        return g * 0.5 / np.sqrt(self._x)

class NanBackward(Module):
    def forward(self, x):
        return 2 * x

    def backward(self, g):
        return g * np.nan
"""


def test_non_finite_forward_is_named_as_such_not_as_randomness(tmp_path, capsys) -> None:
    (tmp_path / "layers.py").write_text(NAN_LAYERS)
    assert main(["gradcheck", f"{tmp_path / 'layers.py'}:Sqrt", "--input-shape", "4,3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "non-finite" in err and "random" not in err


def test_json_of_a_non_finite_error_is_strict_json(tmp_path, capsys) -> None:
    (tmp_path / "layers.py").write_text(NAN_LAYERS)
    argv = ["gradcheck", f"{tmp_path / 'layers.py'}:NanBackward", "--input-shape", "4,3"]
    assert main([*argv, "--json"]) == 1
    out = capsys.readouterr().out
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    row = doc["tensors"][0]
    assert row["max_abs"] is None and row["note"] == "not finite" and not doc["passed"]

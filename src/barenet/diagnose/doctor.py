"""``barenet doctor``: quick checks that point from "my network does not learn" to a cause.

Each check measures one thing on the config's own data, model and optimizer (fresh, seeded
as ``barenet train`` would build them) and says ok / warn / fail with what to do. The rules
are the ones a first deep-learning course teaches (Karpathy's "A recipe for training neural
networks", cs231n's babysitting notes):

- input statistics after preprocessing: centred (|mean| < 1) and scaled (0.1 < std < 10);
- loss at initialisation close to ln(classes) (uniform predictions): above 1.5x it the
  initial outputs are overconfident;
- symmetry: a hidden layer with identical units (zero or constant init) never un-identifies
  them, since identical units get identical gradients;
- dead ReLUs (units off for every sample) and saturated sigmoid/tanh outputs, per layer;
- activations that do not depend on the input (per-unit std over the batch ~ 0);
- gradient norm per layer over the first steps: first/last layer ratio under 1e-2 means the
  gradient vanishes on the way down, a non-finite or huge one that it explodes;
- update-to-weight ratio ||dW|| / ||W|| per step and layer: about 1e-3 is healthy, above
  ~3e-2 the lr is too high, under 1e-5 too low;
- overfitting one batch of 32 samples to 100% in at most 300 steps (if it cannot, there is a
  bug, or the lr or capacity is wrong);
- the learning-rate range test and where the configured lr falls in it.

The first steps follow the configured schedule (warm-up included), as training would; the
one-batch overfit runs at the configured lr. Everything runs on one BLAS thread: the batches
are small, and on a shared machine a second spinning thread only slows them down.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from ..config import Config
from .lrfind import lr_range_test
from .probe import UPDATE_RATIO_HEALTHY, ProbeResult, groups_of, probe
from .setup import Data, Setup, batches, fresh, load_data, train_step

STATUSES = ("ok", "warn", "fail")


@dataclass
class Check:
    check: str
    status: str  # ok | warn | fail
    detail: str  # what was measured; what to do
    value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        v = self.value
        return {
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "value": None if v is None or not math.isfinite(v) else float(v),
        }


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def _layers(vals: list[tuple[int, float]], fmt=_pct) -> str:
    return ", ".join(f"layer {i}: {fmt(v)}" for i, v in vals)


def check_input(x: np.ndarray) -> Check:
    x = np.asarray(x, dtype=np.float64)
    mean, std, lo, hi = float(x.mean()), float(x.std()), float(x.min()), float(x.max())
    desc = f"mean {mean:.2f}, std {std:.2f}, range [{lo:.2f}, {hi:.2f}]"
    if not np.isfinite(x).all() or std < 1e-6:
        return Check("input", "fail", f"{desc}: the inputs carry no signal; check the data", std)
    if abs(mean) > 1 or not 0.1 < std < 10 or max(abs(lo), abs(hi)) > 50:
        return Check(
            "input", "warn", f"{desc}: set data.preprocess: standardize (mean 0, std 1)", std
        )
    return Check("input", "ok", f"{desc}: centred and scaled", std)


def check_init_loss(p: ProbeResult, classes: int) -> Check:
    ref = math.log(classes)
    desc = f"loss {p.loss:.3g} at init vs ln({classes}) = {ref:.2f}"
    if not math.isfinite(p.loss) or p.loss > 3 * ref:
        return Check(
            "init_loss",
            "fail",
            f"{desc}: the initial outputs are huge; shrink the init (model.init: he_normal or "
            "xavier_normal) and check the input scale",
            p.loss,
        )
    if p.loss > 1.5 * ref:
        return Check(
            "init_loss",
            "warn",
            f"{desc}: the initial predictions are overconfident; use a smaller init",
            p.loss,
        )
    return Check("init_loss", "ok", f"{desc}: predictions start near uniform", p.loss)


def check_symmetry(s: Setup) -> Check:
    groups = groups_of(s.model)
    dup: list[tuple[int, float]] = []
    for g in groups[:-1]:  # a zero output layer is fine: hidden units differ, so it learns
        w = g.weight.data.reshape(len(g.weight.data), -1)
        if len(w) > 1:
            dup.append((g.index, 1 - len(np.unique(w, axis=0)) / len(w)))
    worst = max((v for _, v in dup), default=0.0)
    zero = [g.index for g in groups if not np.any(g.weight.data)]
    if worst > 0:
        what = f"all-zero weights in layers {zero}" if zero else "identical units"
        return Check(
            "symmetry",
            "fail",
            f"{what}, units that copy another: {_layers([d for d in dup if d[1] > 0])}; "
            "identical units get identical gradients and stay identical: use a random init "
            "(he_normal for ReLU, xavier_normal for sigmoid/tanh)",
            worst,
        )
    return Check("symmetry", "ok", "every hidden unit starts different", 0.0)


def check_dead(p: ProbeResult, when: str) -> Check:
    vals = [(i + 1, g.dead) for i, g in enumerate(p.groups) if g.dead is not None]
    if not vals:
        return Check("dead_relu", "ok", "no ReLU layers", None)
    worst = max(v for _, v in vals)
    desc = f"units off for every sample {when}: {_layers(vals)}"
    cause = (
        "the init leaves them off: use he_normal and zero biases"
        if when == "at init"
        else "a too-high lr pushed them off: lower the lr or use leaky_relu"
    )
    # cs231n: "as much as 40% of your network can be dead" after a too-high lr
    if worst > 0.6:
        status, todo = "fail", cause
    elif worst > 0.4:
        status, todo = "warn", f"many units never fire; {cause}"
    else:
        status, todo = "ok", "healthy"
    return Check("dead_relu", status, f"{desc}: {todo}", worst)


def check_saturation(p: ProbeResult) -> Check:
    vals = [(i + 1, g.saturated) for i, g in enumerate(p.groups) if g.saturated is not None]
    if not vals:
        return Check("saturation", "ok", "no sigmoid or tanh layers", None)
    worst = max(v for _, v in vals)
    desc = f"outputs where sigmoid/tanh is flat (derivative < 10% of its peak): {_layers(vals)}"
    if worst > 0.3:
        status, todo = "fail", "the gradient cannot pass; use xavier init and standardized inputs"
    elif worst > 0.1:
        status, todo = "warn", "part of the gradient is lost; consider xavier init or ReLU"
    else:
        status, todo = "ok", "healthy"
    return Check("saturation", status, f"{desc}: {todo}", worst)


def check_activations(p: ProbeResult) -> Check:
    hidden = [(i + 1, g.unit_std) for i, g in enumerate(p.groups[:-1])]
    if not hidden:
        return Check("activations", "ok", "no hidden layers", None)
    worst = min(v for _, v in hidden)
    desc = "std of each unit over the batch, mean per layer: " + _layers(
        hidden, lambda v: f"{v:.2g}"
    )
    if worst < 1e-3:
        return Check(
            "activations",
            "fail",
            f"{desc}: some layers' outputs barely depend on the input; the init is too small "
            "(use he_normal or xavier_normal)",
            worst,
        )
    return Check("activations", "ok", f"{desc}: every layer responds to its input", worst)


@dataclass
class Steps:
    """Per weight layer and step: gradient norms and update-to-weight ratios."""

    grad: list[list[float]]
    ratio: list[list[float]]
    losses: list[float]


def first_steps(cfg: Config, s: Setup, data: Data, n: int) -> Steps:
    """``n`` training steps at the configured lr, measured per weight layer."""
    groups = groups_of(s.model)
    out = Steps([[] for _ in groups], [[] for _ in groups], [])
    before: list[np.ndarray] = []

    def on_grads() -> None:
        before.clear()
        for k, g in enumerate(groups):
            out.grad[k].append(float(np.linalg.norm(g.weight.grad)))
            before.append(g.weight.data.astype(np.float64))

    for xb, yb in islice(batches(cfg, data), n):
        out.losses.append(train_step(s, xb, yb, cfg.train.clip_grad_norm, on_grads))
        for k, g in enumerate(groups[: len(before)]):
            w = np.linalg.norm(before[k])
            dw = float(np.linalg.norm(g.weight.data - before[k]))
            out.ratio[k].append(dw / w if w > 0 else (math.inf if dw > 0 else math.nan))
        if not math.isfinite(out.losses[-1]):
            break
    return out


def check_grads(st: Steps) -> Check:
    means = [float(np.mean(g)) if g else math.nan for g in st.grad]
    vals = list(enumerate(means, start=1))
    desc = f"gradient norm over the first {len(st.losses)} steps: " + _layers(
        vals, lambda v: f"{v:.2g}"
    )
    if not all(map(math.isfinite, means)) or not all(map(math.isfinite, st.losses)):
        return Check(
            "grad_norm",
            "fail",
            f"{desc}: the loss or gradient became infinite (exploding); lower the lr or set "
            "train.clip_grad_norm",
            None,
        )
    spread = min(means) / max(means) if max(means) > 0 else 0.0
    if max(means) > 1e3:
        return Check("grad_norm", "fail", f"{desc}: exploding gradients; lower the lr", max(means))
    if spread < 1e-2:
        status = "fail" if spread < 1e-4 else "warn"
        return Check(
            "grad_norm",
            status,
            f"{desc}: the gradient vanishes towards the input (smallest/largest {spread:.1e}); "
            "use ReLU, he_normal/xavier init or batch norm",
            spread,
        )
    return Check("grad_norm", "ok", f"{desc}: no layer vanishes or explodes", spread)


def check_updates(st: Steps) -> Check:
    means = [float(np.mean(r)) if r else math.nan for r in st.ratio]
    vals = list(enumerate(means, start=1))
    desc = "update/weight ratio ||dW||/||W|| per step: " + _layers(vals, lambda v: f"{v:.1e}")
    finite = [v for v in means if math.isfinite(v)]
    if any(math.isnan(v) for v in means):
        return Check(
            "update_ratio",
            "fail",
            f"{desc}: zero weights that no update moves (nan = 0/0); use a random init",
            None,
        )
    if not finite or max(means) > 0.1 or any(math.isinf(v) for v in means):
        return Check(
            "update_ratio",
            "fail",
            f"{desc}: each step rewrites the weights (healthy ~1e-3); lower the lr",
            max(finite, default=None),
        )
    hi, lo = max(finite), min(finite)
    if lo < 1e-5:
        return Check(
            "update_ratio",
            "warn",
            f"{desc}: some layers barely move (healthy ~1e-3); fix vanishing gradients first "
            "(see grad_norm), else raise the lr",
            lo,
        )
    if hi > 0.03:
        return Check(
            "update_ratio", "warn", f"{desc}: large steps (healthy ~1e-3); try a lower lr", hi
        )
    low, high = UPDATE_RATIO_HEALTHY
    if low <= lo and hi <= high:
        return Check("update_ratio", "ok", f"{desc}: healthy (~1e-3)", hi)
    return Check(
        "update_ratio", "ok", f"{desc}: acceptable (healthy is {low:g} to {high:g}, ~1e-3)", hi
    )


def check_overfit(cfg: Config, data: Data, size: int = 32, max_steps: int = 300) -> Check:
    s = fresh(cfg)
    x, y = data.train.x[:size], np.asarray(data.train.y[:size])
    acc, step = 0.0, 0
    for step in range(1, max_steps + 1):
        loss = train_step(s, x, y, cfg.train.clip_grad_norm)
        if not math.isfinite(loss):
            return Check(
                "overfit_batch",
                "fail",
                f"the loss diverged after {step} steps on one batch of {size}: lower the lr",
                0.0,
            )
        if step % 10 == 0 or step == max_steps:
            s.model.eval()
            acc = float(np.mean(s.model.forward(x).argmax(axis=1) == y))
            s.model.train()
            if acc == 1.0:
                break
    desc = f"one batch of {size} samples: {_pct(acc)} train accuracy after {step} steps"
    if acc == 1.0:
        return Check("overfit_batch", "ok", f"{desc}: the model can learn", acc)
    status = "warn" if acc >= 0.9 else "fail"
    return Check(
        "overfit_batch",
        status,
        f"{desc}: a working network memorises a batch; suspect a bug in a backward pass "
        "(barenet gradcheck), the init or the lr",
        acc,
    )


def check_lr(cfg: Config, data: Data) -> Check:
    res = lr_range_test(cfg, data)
    status, detail = res.verdict()
    return Check("lr_range", status, detail, res.suggested_lr)


def run_doctor(cfg: Config, data_dir: str | None = None, steps: int = 20) -> list[Check]:
    """Every check, in the order a learner would go through them."""
    from threadpoolctl import threadpool_limits

    # a diverging config overflows on purpose: the checks report it, numpy need not
    with threadpool_limits(1), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _run(cfg, data_dir, steps)


def _run(cfg: Config, data_dir: str | None, steps: int) -> list[Check]:
    data = load_data(cfg, data_dir)
    rng = np.random.default_rng(cfg.seed)
    idx = np.sort(rng.choice(len(data.train), size=min(512, len(data.train)), replace=False))
    xb, yb = data.train.x[idx], np.asarray(data.train.y[idx])
    s = fresh(cfg, data)
    at_init = probe(s.model, s.loss_fn, xb, yb)
    checks = [
        check_input(xb),
        check_init_loss(at_init, cfg.model.num_classes),
        check_symmetry(s),
        check_activations(at_init),
        check_saturation(at_init),
    ]
    st = first_steps(cfg, s, data, steps)
    after = probe(s.model, s.loss_fn, xb, yb)
    dead_init, dead_after = (
        check_dead(at_init, "at init"),
        check_dead(after, f"after {steps} steps"),
    )
    worse = STATUSES.index(dead_after.status) > STATUSES.index(dead_init.status)
    checks += [
        dead_after if worse else dead_init,
        check_grads(st),
        check_updates(st),
        check_overfit(cfg, data),
        check_lr(cfg, data),
    ]
    return checks


def format_checks(checks: list[Check]) -> str:
    width = max(len(c.check) for c in checks)
    return "\n".join(f"{c.status:<4}  {c.check:<{width}}  {c.detail}" for c in checks)

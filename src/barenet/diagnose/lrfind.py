"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates"; fastai's ``lr_find``).

From a fresh model, take one optimizer step per batch while the learning rate grows
exponentially, lr_i = lr_min * (lr_max / lr_min)^(i / (n - 1)), and record the loss. The
loss first stays flat (lr too small to matter), then falls (useful lrs), then blows up. The
curve is smoothed with a bias-corrected exponential moving average (beta 0.98, as fastai)
and the test stops once the smoothed loss exceeds 4x its minimum.

Suggested lr: the lr at the minimum of the smoothed curve divided by 3 -- Smith's rule of a
third of the largest lr that still lowers the loss; the minimum itself is too close to
divergence for a whole run. (fastai divides by 10, which on barenet's default MLP with SGD
momentum and a cosine schedule lands on 0.01 and 96.9% after 3 epochs; /3 gives 0.035 and
97.8%.) The configured lr is in the good range between 1/100 of the minimum's lr and the
minimum's lr itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from ..config import Config
from .setup import Data, batches, fresh, load_data, train_step

__all__ = ["LRFindResult", "lr_range_test"]


@dataclass
class LRFindResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # raw batch losses (inf when diverged)
    smoothed: list[float] = field(default_factory=list)
    configured_lr: float = math.nan
    diverged_at: float | None = None  # the lr where the smoothed loss passed 4x its minimum

    @property
    def min_loss_lr(self) -> float:
        return self.lrs[int(np.argmin(self.smoothed))]

    @property
    def suggested_lr(self) -> float:
        return float(f"{self.min_loss_lr / 3:.2g}")

    @property
    def good_range(self) -> tuple[float, float]:
        return self.min_loss_lr / 100, self.min_loss_lr

    @property
    def loss_falls(self) -> bool:
        """Whether the smoothed loss dropped at all (by 10% of its start): if not, no lr
        helps and the range means nothing."""
        return min(self.smoothed) < 0.9 * self.smoothed[0]

    def verdict(self) -> tuple[str, str]:
        """('ok'|'warn'|'fail', one sentence) for the configured lr."""
        lr, (lo, hi) = self.configured_lr, self.good_range
        if not self.loss_falls:
            return "warn", (
                f"the loss does not fall at any lr from {self.lrs[0]:.0e} to {self.lrs[-1]:.2g}: "
                "the lr is not the problem; fix the other checks first"
            )
        sug = f"try --set optim.lr={self.suggested_lr:g}"
        if self.diverged_at is not None and lr >= self.diverged_at:
            return (
                "fail",
                f"lr {lr:g} is where the loss blows up (from {self.diverged_at:.2g}); {sug}",
            )
        if lr > hi:
            return "warn", f"lr {lr:g} is past the loss minimum ({hi:.2g}), where it rises; {sug}"
        if lr < lo / 10:
            return (
                "fail",
                f"lr {lr:g} is far too small to move the loss (good: {lo:.2g}-{hi:.2g}); {sug}",
            )
        if lr < lo:
            return "warn", f"lr {lr:g} is below the good range {lo:.2g}-{hi:.2g}: slow; {sug}"
        return (
            "ok",
            f"lr {lr:g} is in the good range {lo:.2g}-{hi:.2g} (suggested {self.suggested_lr:g})",
        )

    def as_dict(self) -> dict:
        return {
            "suggested_lr": self.suggested_lr,
            "min_loss_lr": self.min_loss_lr,
            "good_range": list(self.good_range),
            "configured_lr": self.configured_lr,
            "diverged_at": self.diverged_at,
            "lrs": self.lrs,
            "losses": self.losses,  # inf (diverged) is written as null by fileio.save_json
            "smoothed": self.smoothed,
        }


def lr_range_test(
    cfg: Config,
    data: Data | None = None,
    data_dir: str | None = None,
    lr_min: float = 1e-6,
    lr_max: float = 10.0,
    steps: int = 100,
    beta: float = 0.98,
    stop_factor: float = 4.0,
) -> LRFindResult:
    """Run the test on a fresh model built from ``cfg`` (its optimizer, batch size, seeds),
    on one BLAS thread (small batches; see ``doctor``)."""
    from threadpoolctl import threadpool_limits

    if not 0 < lr_min < lr_max or steps < 5:
        raise ValueError("lr_range_test needs 0 < lr_min < lr_max and at least 5 steps")
    data = data if data is not None else load_data(cfg, data_dir)
    with threadpool_limits(1):
        return _run(cfg, data, lr_min, lr_max, steps, beta, stop_factor)


def _run(
    cfg: Config, data: Data, lr_min: float, lr_max: float, steps: int, beta: float, stop: float
) -> LRFindResult:
    s = fresh(cfg)
    res = LRFindResult(configured_lr=cfg.optim.lr)
    avg, best = 0.0, math.inf
    ratio = lr_max / lr_min
    for i, (xb, yb) in enumerate(islice(batches(cfg, data), steps)):
        lr = lr_min * ratio ** (i / (steps - 1))
        s.optimizer.lr = lr
        loss = train_step(s, xb, yb, cfg.train.clip_grad_norm)
        res.lrs.append(lr)
        res.losses.append(loss if math.isfinite(loss) else math.inf)
        if not math.isfinite(loss):
            res.smoothed.append(math.inf)
            res.diverged_at = lr
            break
        avg = beta * avg + (1 - beta) * loss
        smooth = avg / (1 - beta ** (i + 1))
        res.smoothed.append(smooth)
        best = min(best, smooth)
        if i > 5 and smooth > stop * best:
            res.diverged_at = lr
            break
    return res

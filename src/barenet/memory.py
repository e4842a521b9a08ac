"""How much memory a config needs, and how much this machine may use, before anything is built.

The estimate walks the layers :mod:`barenet.builders` builds from a ``ModelConfig`` with plain
arithmetic (nothing is allocated), so a config that asks for ``sizes: [784, 10000000, 10]``
or ``channels: 100000`` is refused in microseconds with its size instead of failing later
with a ``MemoryError`` (or being killed by the kernel):

    total = weights * (2 + optimizer slots + 2)        # weights, grads, slots, 2 saved copies
          + activations per sample * max(2 * batch, 1024) * itemsize   # forward + backward
          + preprocessed train and test images

The two saved copies are the serialised checkpoint and the best weights kept for
early stopping. The cap (:func:`memory_limit`) is the smallest of the physical memory,
the cgroup limit and ``RLIMIT_AS``, or ``$BARENET_MEMORY_LIMIT`` (bytes, or ``8G``/``512M``).
"""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config, ModelConfig

ENV_VAR = "BARENET_MEMORY_LIMIT"
EVAL_BATCH = 1024  # the evaluation loaders' batch size (runner.py)
DATA_SAMPLES = 70_000  # MNIST / Fashion-MNIST: 60k train + 10k test
OPTIMIZER_SLOTS = {"sgd": 1, "adam": 2, "adamw": 2, "rmsprop": 2}
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training run of one config needs (an estimate, within a small factor)."""

    parameters: int  # learnable values (what ``model.num_parameters()`` reports)
    weights: int  # bytes of one copy of parameters and buffers
    training: int  # weights, gradients, optimizer state and saved copies
    activations: int  # forward caches and backward gradients of the largest batch
    data: int  # the decoded and preprocessed images
    batch: int

    @property
    def total(self) -> int:
        return self.training + self.activations + self.data

    def describe(self) -> str:
        return (
            f"about {gib(self.total)} ({self.parameters:,} parameters: {gib(self.weights)} "
            f"of weights, {gib(self.training)} with gradients, optimizer state and saved "
            f"copies; {gib(self.activations)} of activations for a batch of {self.batch}; "
            f"{gib(self.data)} of data)"
        )


def gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 28 else f"{n / (1 << 20):.1f} MiB"


def _dense(sizes: list[int], cfg: ModelConfig) -> tuple[int, int, int]:
    """(parameters, buffers, activation values per sample) of models._dense_stack."""
    params = buffers = acts = 0
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        params += fan_in * fan_out + fan_out
        acts += fan_out
        if i < len(sizes) - 2:
            if cfg.batch_norm:
                params, buffers = params + 2 * fan_out, buffers + 2 * fan_out + 1
                acts += fan_out
            acts += fan_out * (2 if cfg.dropout > 0 else 1)  # activation [+ dropout and mask]
    return params, buffers, acts


def model_size(cfg: ModelConfig) -> tuple[int, int, int]:
    """(parameters, buffers, activation values per sample) of the model ``cfg`` describes."""
    if cfg.type == "mlp":
        params, buffers, acts = _dense(list(cfg.sizes), cfg)
        return params, buffers, acts + cfg.sizes[0]
    params = buffers = 0
    acts = in_ch = cfg.input_shape[0]
    _, h, w = cfg.input_shape
    for b, (c, ph, pw) in zip(cfg.blocks, cfg.feature_shapes(), strict=True):
        h, w = b.conv_size(h, w)
        conv_out = c * h * w
        params += in_ch * c * b.kernel**2 + (0 if b.batch_norm else c)
        acts += in_ch * b.kernel**2 * h * w + conv_out * 2  # patches, conv out, activation
        if b.batch_norm:
            params, buffers, acts = params + 2 * c, buffers + 2 * c + 1, acts + conv_out
        if b.pool > 1:
            acts += conv_out + c * ph * pw  # the pool's argmax mask and its output
        if b.dropout > 0:
            acts += 2 * c * ph * pw
        in_ch, h, w = c, ph, pw
    dp, db, da = _dense([in_ch * h * w, *cfg.dense], cfg)
    return params + dp, buffers + db, acts + da


def memory_estimate(cfg: Config) -> MemoryEstimate:
    """The memory training ``cfg`` needs; pure arithmetic on the config (see the module doc)."""
    itemsize = 8 if cfg.train.dtype == "float64" else 4
    params, buffers, acts = model_size(cfg.model)
    weights = (params + buffers) * itemsize
    slots = OPTIMIZER_SLOTS.get(cfg.optim.name, 2)
    training = weights * 4 + params * itemsize * slots
    batch = max(2 * cfg.train.batch_size, EVAL_BATCH)
    activations = acts * itemsize * batch
    pixels = math.prod(cfg.model.input_shape)
    data = DATA_SAMPLES * pixels * (itemsize + 1)  # preprocessed copy and the decoded uint8
    return MemoryEstimate(params, weights, training, activations, data, cfg.train.batch_size)


def parse_size(text: str) -> int:
    """``'8G'`` -> 8 GiB, ``'512M'``, ``'1000000'`` (bytes); ValueError otherwise."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] else ""
    value = float(t[: len(t) - len(unit)])
    if not math.isfinite(value) or value <= 0:
        raise ValueError(text)
    return int(value * _UNITS[unit])


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def memory_limit() -> tuple[int, str]:
    """(bytes, where the number comes from): the most a run may plan to use."""
    env = os.environ.get(ENV_VAR)
    if env:
        from .config import ConfigError

        try:
            return parse_size(env), f"${ENV_VAR}"
        except (ValueError, IndexError):
            raise ConfigError(
                f"${ENV_VAR}={env!r}: expected a size such as 8G, 512M or a number of bytes"
            ) from None
    limits = [(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "physical memory")]
    cgroup = _cgroup_limit()
    if cgroup:
        limits.append((cgroup, "the cgroup memory limit"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append((soft, "RLIMIT_AS (ulimit -v)"))
    return min(limits)


def check_fits(cfg: Config) -> MemoryEstimate:
    """The estimate, or ConfigError (with the estimate and the cap) if it exceeds the cap."""
    from .config import ConfigError

    est = memory_estimate(cfg)
    limit, source = memory_limit()
    if est.total > limit:
        raise ConfigError(
            f"config '{cfg.name}' needs {est.describe()} to train, more than the "
            f"{gib(limit)} of {source}; use a smaller model or batch "
            f"(or set {ENV_VAR} to raise the cap)"
        )
    return est

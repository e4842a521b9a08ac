"""An experiment as a study on the search engine: its grid is variants x seeds.

Every run is queued once, in seed-major order, when the study is created (under the study's
lock, so two processes or machines starting together queue it once); workers pop the queue,
so each (variant, seed) runs exactly once, and a run whose worker died or was stopped is
re-queued like any interrupted trial. Each run's metrics live in its trial's user attrs,
so the tables are built from the storage alone.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from .. import fileio
from ..config import Config, ConfigError, validate
from ..rundir import CONFIG_FILE, EXPERIMENT_FILE, METRICS_FILE
from ..search.task import outcome, seconds
from .spec import Experiment, RunSpec

RUN_ATTR = "run"  # the user attr naming a trial's run, "VARIANT/seed_K" (kept by retries)
_RUN_ATTR = "run:"


def label(spec: RunSpec) -> str:
    return f"{spec.variant}/seed_{spec.seed}"


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return prefix.rstrip(".") or "config"


def _portable(config: dict[str, Any]) -> dict[str, Any]:
    """What must agree between machines sharing the study (not where the data lives)."""
    return {**config, "data": {k: v for k, v in config["data"].items() if k != "data_dir"}}


class ExperimentTask:
    """The :class:`~barenet.search.task.StudyTask` of an experiment."""

    direction = "maximize"
    objective_key = "val_accuracy"
    evaluate_test = True
    manifest = EXPERIMENT_FILE
    unit = "runs"

    def __init__(self, exp: Experiment) -> None:
        self.exp = exp
        self.study_name = exp.name
        self.specs = {label(s): s for s in exp.runs()}

    def budget(self, trials: int | None) -> int:
        return len(self.specs)

    def sampler(self, worker: int = 0, parallel: bool = False, salt: str = "") -> Any:
        return optuna.samplers.RandomSampler(seed=0)  # never asked: every run is queued

    def pruner(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.NopPruner()

    def fingerprint(self) -> dict[str, Any]:
        # Each run's config is checked by seed_study instead, so an experiment can grow
        # (more seeds, a new variant) and keep the runs it has.
        return {"kind": "experiment"}

    def resolved(self, budget: int) -> dict[str, Any]:
        return self.exp.resolved()

    def check_out(self, out: Path) -> None:
        manifest = out / EXPERIMENT_FILE
        if manifest.exists():
            old = fileio.load_yaml(manifest) or {}
            if isinstance(old, dict) and old.get("name") not in (None, self.exp.name):
                raise ConfigError(
                    f"{out} holds experiment '{old.get('name')}'; "
                    f"use another --out for '{self.exp.name}'"
                )

    def seed_study(self, study: optuna.Study, out: Path) -> None:
        """Queue every run not queued yet (once: the caller holds the study's lock), and
        refuse a run whose config changed. The study's user attr ``run:VARIANT/seed_K``
        records each queued run's config. A run folder finished by an older barenet (no
        study) is taken over as a completed trial if its config matches."""
        queued = study.user_attrs
        for key, spec in self.specs.items():
            mine = json.dumps(_portable(spec.config), sort_keys=True)
            theirs = queued.get(f"{_RUN_ATTR}{key}")
            if theirs is not None:
                if theirs != mine:
                    where = _first_difference(json.loads(theirs), json.loads(mine))
                    raise ConfigError(
                        f"run {key} of study '{self.study_name}' was created from a different "
                        f"config ({where} differs); use another --out/--storage, or the "
                        "same experiment file"
                    )
                continue
            run = out / spec.rel_dir
            if (run / METRICS_FILE).exists() and (run / CONFIG_FILE).exists():
                saved = fileio.load_yaml(run / CONFIG_FILE)
                if saved != spec.config:
                    raise ConfigError(
                        f"{run} was trained with a different config "
                        f"({_first_difference(saved, spec.config)} differs); "
                        "use another --out, or delete that folder to retrain it"
                    )
                study.add_trial(self._finished(key, spec, fileio.load_json(run / METRICS_FILE)))
            else:
                study.enqueue_trial({}, user_attrs={RUN_ATTR: key})
            study.set_user_attr(f"{_RUN_ATTR}{key}", mine)

    def _finished(self, key: str, spec: RunSpec, m: dict[str, Any]) -> FrozenTrial:
        attrs = {k: m[k] for k in (*_METRICS, "best_epoch", "epochs_run") if k in m}
        attrs.update({RUN_ATTR: key, "variant": spec.variant, "seed": spec.seed})
        attrs["run_dir"] = spec.rel_dir
        value = m.get("val_accuracy")
        ok = m.get("status", "ok") == "ok" and isinstance(value, float) and math.isfinite(value)
        if not ok:
            attrs["fail_reason"] = f"TrainingDiverged: {m.get('error', 'diverged')}"
        return optuna.trial.create_trial(
            state=TrialState.COMPLETE if ok else TrialState.FAIL,
            value=value if ok else None,
            user_attrs=attrs,
        )

    def prepare(self, trial: optuna.Trial, out: Path) -> tuple[Config, Path]:
        key = trial.user_attrs.get(RUN_ATTR)
        if key not in self.specs:
            raise ConfigError(f"trial {trial.number} names no run of this experiment: {key!r}")
        spec = self.specs[key]
        trial.set_user_attr("variant", spec.variant)
        trial.set_user_attr("seed", spec.seed)
        run_dir = out / spec.rel_dir
        if run_dir.exists():  # an interrupted attempt of this run: this trial owns it now
            shutil.rmtree(run_dir)
        return validate(spec.config), run_dir

    def describe(self, t: FrozenTrial) -> str:
        run = t.user_attrs.get(RUN_ATTR, "?")
        if t.state == TrialState.COMPLETE:
            parts = [
                f"{k} {t.user_attrs[k]:.4f}"
                for k in ("val_accuracy", "test_accuracy")
                if isinstance(t.user_attrs.get(k), float)
            ]
            result = ", ".join(parts)
        else:
            result = outcome(t, self.objective_key)
        return f"{run} {t.state.name}: {result}{seconds(t)}"

    def write_outputs(self, out: Path, study: optuna.Study) -> list[dict[str, Any]]:
        from .tables import collect_rows, write_tables

        rows = collect_rows(self.exp, study.get_trials(deepcopy=False))
        write_tables(self.exp, out, rows)
        return rows


_METRICS = ("val_accuracy", "val_loss", "final_val_accuracy", "test_accuracy", "train_seconds")

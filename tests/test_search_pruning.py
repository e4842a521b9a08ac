"""PruningCallback: an Optuna objective of one's own with barenet's Trainer, pruned as with
optuna-integration's KerasPruningCallback."""

from __future__ import annotations

import optuna
import pytest
from test_trainer import make_loaders, make_trainer

from barenet.search import PruningCallback
from barenet.train import CSVLogger

optuna.logging.set_verbosity(optuna.logging.WARNING)


class PruneFrom(optuna.pruners.BasePruner):
    """Prunes every trial once it has reported step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return (trial.last_step or 0) >= self.step


def study_of(objective, pruner, direction="minimize"):
    study = optuna.create_study(direction=direction, pruner=pruner)
    study.optimize(objective, n_trials=1)
    return study, study.trials[0]


def test_reports_each_epoch_and_completes():
    histories = []

    def objective(trial):
        trainer = make_trainer(callbacks=[PruningCallback(trial, "val_loss")])
        histories.append(trainer.fit(*make_loaders(), epochs=3))
        return histories[-1].history["val_loss"][-1]

    _, trial = study_of(objective, optuna.pruners.NopPruner())
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.intermediate_values == dict(enumerate(histories[0]["val_loss"], start=1))


def test_prunes_when_the_pruner_says_so_after_on_train_end(tmp_path):
    def objective(trial):
        callbacks = [CSVLogger(tmp_path / "h.csv"), PruningCallback(trial, "val_accuracy")]
        make_trainer(callbacks=callbacks).fit(*make_loaders(), epochs=5)
        return 0.0

    _, trial = study_of(objective, PruneFrom(2), direction="maximize")
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert sorted(trial.intermediate_values) == [1, 2]
    assert len((tmp_path / "h.csv").read_text().splitlines()) == 1 + 2  # the logger is final


def test_interval_and_a_missing_monitor():
    def objective(trial):
        cbs = [PruningCallback(trial, "val_loss", interval=2), PruningCallback(trial, "nope")]
        with pytest.warns(UserWarning, match="'nope' is not in the logs"):
            make_trainer(callbacks=cbs).fit(*make_loaders(), epochs=5)
        return 0.0

    _, trial = study_of(objective, optuna.pruners.NopPruner())
    assert sorted(trial.intermediate_values) == [2, 4]
    with pytest.raises(ValueError, match="interval"):
        PruningCallback(None, "val_loss", interval=0)

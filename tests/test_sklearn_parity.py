"""barenet.sklearn.MLPClassifier against sklearn.neural_network.MLPClassifier with the same
parameters on scikit-learn's own small datasets: the same meaning of alpha, tol and
n_iter_no_change and the same kind of start, so the same accuracy to within noise."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from barenet.sklearn import MLPClassifier
from barenet.sklearn.stopping import NoImprovement

DATA = {"iris": load_iris, "wine": load_wine, "digits": load_digits}


def accuracy(cls, data: str, scaled: bool, **params) -> float:
    """Mean 3-fold cross-validated accuracy over random_state 0 and 1."""
    x, y = DATA[data](return_X_y=True)
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for seed in (0, 1):
            est = cls(random_state=seed, **params)
            model = make_pipeline(StandardScaler(), est) if scaled else est
            scores.append(cross_val_score(model, x, y, cv=3).mean())
    return float(np.mean(scores))


@pytest.mark.parametrize(
    ("data", "scaled", "alpha", "margin"),
    # raw wine (features up to ~1700) depends most on the start: a wider margin
    [("wine", False, 1e-4, 0.1), ("iris", True, 1e-4, 0.03), ("digits", True, 3.0, 0.03)],
)
def test_accuracy_as_scikit_learns(data, scaled, alpha, margin):
    """Were 0.44-0.58 on raw wine (a He-normal start, then a stop on the bumpy training
    loss ten epochs early), 0.89-0.91 on scaled iris, and alpha = 3 meant a weight decay 200
    times scikit-learn's (its penalty is per sample of the batch)."""
    ours = accuracy(MLPClassifier, data, scaled, alpha=alpha)
    theirs = accuracy(SklearnMLP, data, scaled, alpha=alpha)
    assert ours >= theirs - margin, (ours, theirs)


class _Trainer:
    stop_training = False


def sklearn_stop_epoch(losses: list[float], tol: float, patience: int) -> int | None:
    """scikit-learn's _update_no_improvement_count, and its stop test, over ``losses``."""
    best, count = np.inf, 0
    for epoch, loss in enumerate(losses, start=1):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count > patience:
            return epoch
    return None


def test_stopping_rule_is_scikit_learns():
    rng = np.random.default_rng(0)
    for _ in range(300):
        tol, patience = float(rng.choice([0.0, 1e-4, 0.05])), int(rng.integers(0, 6))
        losses = list(np.cumsum(rng.normal(-0.01, 0.05, 60)) + 2)
        rule, trainer = NoImprovement(tol, patience), _Trainer()
        rule.on_train_begin(trainer)
        stopped = None
        for epoch, loss in enumerate(losses, start=1):
            rule.on_epoch_end(trainer, epoch, {"loss": loss})
            if trainer.stop_training:
                stopped = epoch
                break
        assert stopped == sklearn_stop_epoch(losses, tol, patience)


def test_scikit_learns_parameters_are_there():
    """All of sklearn's MLPClassifier parameters but its learning-rate schedules and L-BFGS
    budget (early_stopping=True and the others raised "unexpected keyword argument")."""
    import inspect

    theirs = set(inspect.signature(SklearnMLP).parameters)
    ours = set(inspect.signature(MLPClassifier).parameters)
    assert theirs - ours == {"learning_rate", "power_t", "max_fun"}
    assert ours - theirs == {"dropout"}


def test_early_stopping_holds_out_validation_and_keeps_the_best_epoch():
    x, y = load_digits(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    est = MLPClassifier(early_stopping=True, n_iter_no_change=3, random_state=0).fit(x, y)
    assert 3 < est.n_iter_ < 200 and len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_) and est.best_loss_ is None
    late = est.validation_scores_.index(est.best_validation_score_) + 1
    assert est.n_iter_ == late + 4  # more than n_iter_no_change epochs without a gain
    ours = accuracy(MLPClassifier, "digits", True, early_stopping=True)
    theirs = accuracy(SklearnMLP, "digits", True, early_stopping=True)
    assert ours >= theirs - 0.03, (ours, theirs)
    with pytest.raises(ValueError, match="too few to validate"):
        MLPClassifier(early_stopping=True, validation_fraction=0.01).fit(x[:50], y[:50])


def test_warm_start_goes_on_from_the_last_weights():
    x, y = load_iris(return_X_y=True)
    est = MLPClassifier(max_iter=5, n_iter_no_change=0, warm_start=True, random_state=0)
    first = est.fit(x, y).loss_curve_[-1]
    est.fit(x, y)
    assert est.n_iter_ == 10 and len(est.loss_curve_) == 10 and est.loss_curve_[-1] < first
    cold = MLPClassifier(max_iter=5, n_iter_no_change=0, random_state=0).fit(x, y)
    assert cold.fit(x, y).n_iter_ == 5  # without warm_start, fit starts again

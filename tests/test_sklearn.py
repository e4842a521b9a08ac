"""barenet.sklearn: scikit-learn's own estimator checks, and the estimators inside Pipeline,
GridSearchCV and cross_val_score on real MNIST."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import estimator_checks_generator

from barenet.data import load
from barenet.sklearn import CNNClassifier, MLPClassifier

# Small and quick for the checks (their data sets have tens to hundreds of rows).
FAST = {"max_iter": 60, "random_state": 0, "learning_rate_init": 0.01}
ESTIMATORS = [MLPClassifier(hidden_layer_sizes=(16,), **FAST), CNNClassifier(channels=(4,), **FAST)]

# Every check of scikit-learn's suite passes except these, which are not run, and why:
NOT_RUN = {
    # Checks input from other array libraries (array-api-strict, needing SCIPY_ARRAY_API=1
    # before scipy is imported); barenet is a NumPy library and declares no array API support.
    "check_array_api_input": "NumPy only",
}


def check_name(check) -> str:
    return getattr(check, "func", check).__name__


CHECKS = [
    pytest.param(est, chk, id=f"{type(est).__name__}-{check_name(chk)}")
    for e in ESTIMATORS
    for est, chk in estimator_checks_generator(e, legacy=True)
    if check_name(chk) not in NOT_RUN
]


def test_suite_runs_the_usual_checks():
    names = {check_name(c.values[1]) for c in CHECKS}
    assert len(names) > 40 and {"check_fit_idempotent", "check_classifiers_train"} <= names


@pytest.mark.parametrize(("estimator", "check"), CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def mnist_subset(data_dir):
    images, labels = load("mnist", split="train", data_dir=data_dir)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(labels), 1200, replace=False)
    return images[idx].reshape(len(idx), -1), labels[idx]


def scale(x):
    return x / 255.0


def test_grid_search_over_two_learning_rates_on_mnist(mnist_subset):
    x, y = mnist_subset
    pipe = make_pipeline(
        FunctionTransformer(scale),
        MLPClassifier(hidden_layer_sizes=(32,), max_iter=8, random_state=0),
    )
    grid = GridSearchCV(pipe, {"mlpclassifier__learning_rate_init": [1e-4, 1e-2]}, cv=2)
    grid.fit(x, y)
    assert grid.best_params_ == {"mlpclassifier__learning_rate_init": 1e-2}
    scores = grid.cv_results_["mean_test_score"]
    assert scores[1] > scores[0] and scores[1] > 0.8
    assert grid.score(x[:200], y[:200]) > 0.85


def test_cnn_cross_val_score_with_string_labels(mnist_subset):
    x, y = mnist_subset
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    est = make_pipeline(
        FunctionTransformer(scale),
        CNNClassifier(
            input_shape=(1, 28, 28),
            channels=(4, 8),
            max_iter=6,
            random_state=0,
            learning_rate_init=1e-2,
        ),
    )
    scores = cross_val_score(est, x[:600], names[y[:600]], cv=2)
    assert scores.shape == (2,) and scores.min() > 0.6
    est.fit(x[:600], names[y[:600]])
    assert set(est.predict(x[600:650])) <= set(names)


def test_same_random_state_same_model_and_partial_fit(mnist_subset):
    x, y = mnist_subset
    x = x[:300] / 255.0
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=3).fit(x, y[:300])
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=3).fit(x, y[:300])
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    inc = MLPClassifier(hidden_layer_sizes=(8,), random_state=3)
    for _ in range(2):
        inc.partial_fit(x, y[:300], classes=np.arange(10))
    assert inc.n_iter_ == 2
    np.testing.assert_allclose(inc.predict_proba(x), a.predict_proba(x), rtol=1e-5)
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier().partial_fit(x, y[:300])


def test_numpy_parameter_values_as_grid_searches_pass_them():
    """GridSearchCV over np.arange / np.array values hands the estimator NumPy ints and
    arrays, which scikit-learn's own MLPClassifier accepts."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    grid = GridSearchCV(
        MLPClassifier(hidden_layer_sizes=(8,), random_state=0),
        {"max_iter": np.arange(2, 5, 2), "batch_size": np.array([16, 32])},
        cv=2,
        error_score="raise",
    ).fit(x, y)
    assert grid.best_params_["max_iter"] in (2, 4)
    mlp = MLPClassifier(hidden_layer_sizes=np.array([8, 4]), max_iter=2, random_state=0).fit(x, y)
    assert [p.shape for p in mlp.model_.parameters()][::2] == [(8, 4), (4, 8), (3, 4)]
    cnn = CNNClassifier(
        input_shape=(1, 2, 2),
        channels=np.array([2]),
        pool=np.int64(2),
        hidden_layer_sizes=np.array([5]),
        max_iter=np.int64(1),
        random_state=0,
    ).fit(x, y)
    assert cnn.n_iter_ == 1 and cnn.predict(x[:3]).shape == (3,)


def test_scikit_learns_activation_names():
    """activation='logistic' (scikit-learn's sigmoid) and 'identity' train; get_params keeps
    the name as given."""
    from sklearn.datasets import load_iris

    from barenet.sklearn import MLPClassifier

    X, y = load_iris(return_X_y=True)
    for name in ("logistic", "identity", "tanh", "relu"):
        clf = MLPClassifier(hidden_layer_sizes=(8,), activation=name, max_iter=3, random_state=0)
        clf.fit(X, y)
        assert clf.get_params()["activation"] == name
        assert clf.predict(X).shape == y.shape


def test_divergence_names_the_estimators_learning_rate():
    # The trainer's hint ("a lower learning rate or clip_grad_norm") names no parameter of
    # the estimator; it says learning_rate_init.
    from barenet.train.trainer import TrainingDiverged

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 8)).astype(np.float32) * 1e3
    y = rng.integers(0, 3, 64)
    est = MLPClassifier((16,), solver="sgd", learning_rate_init=1e6, max_iter=5, random_state=0)
    with pytest.raises(TrainingDiverged) as info, np.errstate(all="ignore"):
        est.fit(X, y)
    message = str(info.value)
    assert message.endswith("; try a lower learning_rate_init") and "clip_grad_norm" not in message
    assert "became" in message


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"learning_rate_init": -1}, "learning_rate_init"),
        ({"learning_rate_init": 0}, "learning_rate_init"),
        ({"alpha": -1e-4}, "alpha"),
        ({"momentum": 1.5}, "momentum"),
        ({"dropout": 1.0}, "dropout"),
        ({"activation": "softplus"}, "activation"),
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes"),
        ({"learning_rate_init": "0.1"}, "learning_rate_init"),
    ],
)
def test_bad_parameters_are_named_as_the_estimator_names_them(params, name):
    """They were reported by the config keys they become ('optim.lr: Input should be
    greater than 0'), which a scikit-learn user never wrote."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    for est in (MLPClassifier(max_iter=1, **params), CNNClassifier(max_iter=1, **params)):
        with pytest.raises(ValueError, match=f"^{name} ") as e:
            est.fit(X, y)
        assert "optim." not in str(e.value) and "model." not in str(e.value)


def test_cnn_kernel_size_and_pool_must_be_ints():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    for params in ({"kernel_size": 3.7}, {"pool": -1}):
        with pytest.raises(ValueError, match=next(iter(params))):
            CNNClassifier(input_shape=(1, 8, 8), max_iter=1, **params).fit(X, y)

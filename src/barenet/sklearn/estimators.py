"""``MLPClassifier`` and ``CNNClassifier``: barenet networks behind scikit-learn's contract
(see the package docstring)."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

# barenet's builders and training loop: imported here, in one place.
from ..builders import build_model, build_optimizer
from ..config import validate
from ..data import DataLoader, train_val_split
from ..nn import CrossEntropyLoss, Linear
from ..nn.loss import softmax
from ..train.trainer import Trainer, TrainingDiverged
from .params import ACTIVATIONS, activation, check_real, is_int, sizes, store_params
from .stopping import NoImprovement, NoValidationImprovement

PREDICT_BATCH = 1024


class _NetClassifier(ClassifierMixin, BaseEstimator):
    """What both estimators share; subclasses say how the model config is built."""

    def _model_config(self, n_features: int, n_classes: int) -> dict[str, Any]:
        raise NotImplementedError

    def _reshape(self, x: np.ndarray) -> np.ndarray:
        return x

    # -- fitting ------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> _NetClassifier:
        """Train a new network for up to ``max_iter`` epochs on ``X`` (n_samples, n_features)."""
        if not (self.warm_start and hasattr(self, "model_")):  # warm_start: go on from here
            for attr in ("model_", "optimizer_", "classes_", "loss_curve_", "n_iter_"):
                self.__dict__.pop(attr, None)
        return self._fit(X, y, epochs=int(self.max_iter), classes=None)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> _NetClassifier:
        """One epoch over ``X``; the first call needs ``classes`` (all labels there will be)."""
        if not hasattr(self, "model_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, epochs=1, classes=classes)

    def _fit(self, X: Any, y: Any, epochs: int, classes: Any) -> _NetClassifier:
        first = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, reset=first, dtype=np.float32)
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
            self._build(*X.shape)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {classes!r} differ from the first call's {self.classes_!r}")
        target = np.searchsorted(self.classes_, y)
        if np.any(target >= len(self.classes_)) or np.any(self.classes_[target] != y):
            raise ValueError("y holds labels that are not in classes")
        X, val_loader = self._reshape(X), None
        # early_stopping: scikit-learn's held-out validation_fraction (stratified); fit only
        stopping: Any = None
        if self.early_stopping and epochs > 1:
            check_real("validation_fraction", self.validation_fraction, 0.0, 1.0, low_ok=False)
            keep, held = train_val_split(target, self.validation_fraction, self._split_rng)
            if len(held) < 2 or not len(keep):
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} of {len(X)} samples "
                    "leaves too few to validate on (2 at least) or to train on"
                )
            val_loader = DataLoader(X[held], target[held], batch_size=PREDICT_BATCH)
            X, target = X[keep], target[keep]
            stopping = NoValidationImprovement(self.tol, self.n_iter_no_change or 0)
        elif epochs > 1 and self.n_iter_no_change:
            stopping = NoImprovement(self.tol, self.n_iter_no_change)
        loader = DataLoader(
            X,
            target,
            batch_size=self._batch(len(X)),
            shuffle=bool(self.shuffle),
            rng=self._shuffle_rng,
        )
        callbacks = [] if stopping is None else [stopping]
        trainer = Trainer(
            self.model_,
            CrossEntropyLoss(),
            self.optimizer_,
            callbacks=callbacks,
            progress=bool(self.verbose),
        )
        try:
            history = trainer.fit(loader, val_loader, epochs=epochs)
        except TrainingDiverged as e:  # the hint in the estimator's own parameter names
            what = (trainer.stop_reason or str(e)).split("; try ")[0]
            raise TrainingDiverged(f"{what}; try a lower learning_rate_init") from None
        self.loss_curve_ = [*getattr(self, "loss_curve_", []), *(e["loss"] for e in history.epochs)]
        self.n_iter_ = getattr(self, "n_iter_", 0) + len(history.epochs)
        self.loss_ = self.loss_curve_[-1]
        if isinstance(stopping, NoValidationImprovement):  # scikit-learn's attributes
            self.validation_scores_, self.best_validation_score_ = stopping.scores, stopping.best
            self.best_loss_ = None
        else:
            self.best_loss_ = min(self.loss_curve_)
        return self

    def _batch(self, n_samples: int) -> int:
        return min(200 if self.batch_size == "auto" else int(self.batch_size), n_samples)

    def _init_weights(self, model: Any, rng: np.random.Generator) -> None:
        """The first weights; the network's own (config) initialisation by default."""

    def _build(self, n_samples: int, n_features: int) -> None:
        if self.solver not in ("sgd", "adam", "adamw", "rmsprop"):
            raise ValueError(f"solver must be sgd, adam, adamw or rmsprop, got {self.solver!r}")
        if not (is_int(self.max_iter) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter!r}")
        if self.batch_size != "auto" and not (is_int(self.batch_size) and self.batch_size >= 1):
            raise ValueError(
                f"batch_size must be 'auto' or a positive int, got {self.batch_size!r}"
            )
        check_real("learning_rate_init", self.learning_rate_init, 0.0, math.inf, low_ok=False)
        check_real("alpha", self.alpha, 0.0, math.inf)
        check_real("momentum", self.momentum, 0.0, 1.0)
        check_real("dropout", self.dropout, 0.0, 1.0)
        check_real("beta_1", self.beta_1, 0.0, 1.0)
        check_real("beta_2", self.beta_2, 0.0, 1.0)
        check_real("epsilon", self.epsilon, 0.0, math.inf, low_ok=False)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if any(h < 1 for h in sizes(self.hidden_layer_sizes)):
            raise ValueError(
                f"hidden_layer_sizes must be positive, got {self.hidden_layer_sizes!r}"
            )
        cfg = validate(
            {
                "model": self._model_config(n_features, max(len(self.classes_), 1)),
                "optim": {
                    "name": self.solver,
                    "lr": self.learning_rate_init,
                    # scikit-learn's penalty alpha/2 ||W||^2 per batch of n samples (its
                    # gradient alpha W / n), on the weights only, as sklearn's MLP
                    "weight_decay": self.alpha / self._batch(n_samples),
                    "momentum": self.momentum,
                    # scikit-learn's SGD default: Nesterov momentum
                    "nesterov": bool(self.nesterovs_momentum)
                    and self.solver == "sgd"
                    and self.momentum > 0,
                    "betas": (self.beta_1, self.beta_2),
                    "eps": self.epsilon,
                },
            },
            check_data=False,  # the user's features and classes, not data.dataset's
        )
        seeds = np.random.SeedSequence(check_random_state(self.random_state).randint(2**31))
        init, shuffle, split = (np.random.default_rng(s) for s in seeds.spawn(3))
        self._shuffle_rng, self._split_rng = shuffle, split
        self.model_ = build_model(cfg.model, init, "float32")
        self._init_weights(self.model_, init)
        self.optimizer_ = build_optimizer(self.model_.parameters(), cfg.optim)

    # -- predicting ---------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """(n_samples, n_classes) class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "model_")
        X = self._reshape(validate_data(self, X, reset=False, dtype=np.float64))
        # The float32-trained weights, evaluated in float64: a row's probabilities then do
        # not depend on which other rows share its batch (float32 GEMM blocking does).
        model = copy.deepcopy(self.model_).to(np.float64).eval()
        out = [
            softmax(model.forward(X[i : i + PREDICT_BATCH]))
            for i in range(0, len(X), PREDICT_BATCH)
        ]
        return np.concatenate(out).astype(np.float64) if out else np.empty((0, len(self.classes_)))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, as a label from ``classes_``."""
        best = self.predict_proba(X).argmax(axis=1)
        return self.classes_[best]

    def predict_log_proba(self, X: Any) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class MLPClassifier(_NetClassifier):
    """A multi-layer perceptron: Linear -> activation per hidden size, then Linear -> softmax.

    Args:
        hidden_layer_sizes: units of each hidden layer.
        activation: ``relu``, ``tanh``, ``logistic`` (= ``sigmoid``), ``identity``, as
            scikit-learn's, or barenet's ``leaky_relu``.
        solver: ``adam``, ``adamw``, ``sgd`` or ``rmsprop``.
        alpha: L2 penalty as scikit-learn's: alpha/2 ||W||^2 added to each batch's mean
            loss, divided by the batch size (weight decay alpha / batch; biases spared).
        batch_size: samples per step; ``"auto"`` = min(200, n_samples).
        learning_rate_init: the optimizer's learning rate.
        max_iter: epochs (``fit``); ``partial_fit`` runs one.
        tol, n_iter_no_change: scikit-learn's rule: stop when the training loss has not
            beaten its best by ``tol`` for more than ``n_iter_no_change`` epochs in a row
            (0 or None: never); the last weights are kept.
        momentum: SGD / RMSprop momentum.
        dropout: dropout after each hidden layer.
        random_state: seed of the initial weights and the shuffling (None: fresh entropy).
        warm_start, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2,
            epsilon, shuffle: scikit-learn's: ``fit`` goes on from the last weights;
            Nesterov momentum for ``sgd``; hold out ``validation_fraction`` (stratified),
            stop on its accuracy (``validation_scores_``, ``best_validation_score_``) and
            keep the best epoch's weights; Adam's betas and eps; shuffle every epoch.
        verbose: show barenet's progress (a bar, and a line per epoch).
    """

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        momentum: float = 0.9,
        dropout: float = 0.0,
        random_state: Any = None,
        verbose: bool = False,
        warm_start: bool = False,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        shuffle: bool = True,
    ) -> None:
        store_params(self, locals())

    def _init_weights(self, model: Any, rng: np.random.Generator) -> None:
        """scikit-learn's MLP start: weights and biases of each layer from U(-b, b),
        b = sqrt(f / (fan_in + fan_out)), f = 2 for logistic units, else 6 (Glorot)."""
        f = 2.0 if self.activation in ("logistic", "sigmoid") else 6.0
        for layer in model.modules():
            if isinstance(layer, Linear):
                fan_out, fan_in = layer.weight.shape
                b = math.sqrt(f / (fan_in + fan_out))
                layer.weight.data[...] = rng.uniform(-b, b, layer.weight.shape)
                layer.bias.data[...] = rng.uniform(-b, b, fan_out)

    def _model_config(self, n_features: int, n_classes: int) -> dict[str, Any]:
        return {
            "type": "mlp",
            "sizes": [n_features, *sizes(self.hidden_layer_sizes), n_classes],
            "activation": activation(self.activation),
            "dropout": self.dropout,
        }


class CNNClassifier(_NetClassifier):
    """A convolutional network for image-shaped rows: each row of ``X`` is one image of
    ``input_shape`` = (C, H, W) flattened (as MNIST's 784 pixels are).

    Each entry of ``channels`` is a block: Conv2d(kernel_size, 'same' padding) -> activation ->
    2x2 max pooling (skipped once the maps are smaller than the pool); then the dense
    ``hidden_layer_sizes`` and the classifier. ``input_shape=None`` reads a row of
    ``n_features`` as a square one-channel image when ``n_features`` is a square, else as a
    1 x n_features strip. The other arguments are ``MLPClassifier``'s.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int] | None = None,
        channels: tuple[int, ...] = (8, 16),
        kernel_size: int = 3,
        pool: int = 2,
        hidden_layer_sizes: tuple[int, ...] = (),
        activation: str = "relu",
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        momentum: float = 0.9,
        dropout: float = 0.0,
        random_state: Any = None,
        verbose: bool = False,
        warm_start: bool = False,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        shuffle: bool = True,
    ) -> None:
        store_params(self, locals())

    def _image_shape(self, n_features: int) -> tuple[int, int, int]:
        if self.input_shape is not None:
            shape = tuple(int(s) for s in self.input_shape)
            if len(shape) != 3 or math.prod(shape) != n_features:
                raise ValueError(
                    f"input_shape {self.input_shape} does not hold the {n_features} features"
                )
            return shape  # type: ignore[return-value]
        side = math.isqrt(n_features)
        return (1, side, side) if side * side == n_features else (1, 1, n_features)

    def _model_config(self, n_features: int, n_classes: int) -> dict[str, Any]:
        c, h, w = self.input_shape_ = self._image_shape(n_features)
        k = self.kernel_size
        if not is_int(k) or k < 1 or k % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {self.kernel_size!r}")
        if not is_int(self.pool) or self.pool < 0:
            raise ValueError(f"pool must be an int >= 0 (0 or 1: none), got {self.pool!r}")
        blocks = []
        for ch in sizes(self.channels):
            pool = int(self.pool) if min(h, w) >= self.pool else 1
            blocks.append(
                {"channels": int(ch), "kernel": int(k), "padding": int(k) // 2, "pool": pool}
            )
            if pool > 1:
                h, w = h // pool, w // pool
        hidden = sizes(self.hidden_layer_sizes)
        return {
            "type": "cnn",
            "input_shape": [c, self.input_shape_[1], self.input_shape_[2]],
            "blocks": blocks,
            "dense": [*hidden, n_classes],
            "activation": activation(self.activation),
            "dropout": self.dropout,
        }

    def _reshape(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), *self.input_shape_)

"""scikit-learn estimators backed by barenet: ``MLPClassifier`` and ``CNNClassifier``.

They follow scikit-learn's contract (``fit``/``partial_fit``/``predict``/``predict_proba``/
``score``, ``classes_`` of any label type, ``random_state``; parameters are stored untouched
and validated at ``fit``), so they work in ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``. Parameter names follow ``sklearn.neural_network.MLPClassifier`` where the
idea is the same, with its meaning (``hidden_layer_sizes``, ``solver``, ``alpha`` = its L2
penalty, ``learning_rate_init``, ``max_iter`` = epochs, ``tol``/``n_iter_no_change`` on the
training loss, and for ``MLPClassifier`` its Glorot-uniform start). The network, optimizer
and training loop are barenet's (config -> builders -> ``Trainer``), trained in float32 and
evaluated in float64. Needs ``pip install -e '.[sklearn]'``.

Files: ``estimators.py`` (the two estimators), ``stopping.py`` (scikit-learn's stopping
rules), ``params.py`` (parameter checks in the estimators' own names).
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401
except ImportError as e:  # the light install: name the extra, not just the module
    raise ImportError(
        f"barenet.sklearn needs scikit-learn ({e}): pip install -e '.[sklearn]' in barenet's folder"
    ) from e

from .estimators import CNNClassifier, MLPClassifier

__all__ = ["CNNClassifier", "MLPClassifier"]

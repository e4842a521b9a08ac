"""Experiments: variants x seeds of a base config, run as a study on the search engine.

``spec`` reads and validates the experiment YAML, ``task`` turns it into a study (every
(variant, seed) queued once), ``tables`` builds the results from the study, ``run`` runs it;
the figures and ``report.html`` are :mod:`barenet.viz.experiment_report`.
"""

from __future__ import annotations

from .run import ExperimentError, ExperimentResult, run_experiment
from .spec import Experiment, RunSpec, default_out, load_experiment, resolve_experiment

__all__ = [
    "Experiment",
    "ExperimentError",
    "ExperimentResult",
    "RunSpec",
    "default_out",
    "load_experiment",
    "resolve_experiment",
    "run_experiment",
]

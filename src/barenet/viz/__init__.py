"""barenet.viz: plots of a run folder, the HTML report, run comparison and search reports.

Everything reads only saved files (run folder, plus the data set for test images), so it works
on any run, including ones trained elsewhere. matplotlib runs on the Agg backend (no display).
"""

from .compare import compare_runs, overlay_curves
from .pca import pca
from .plots import REGISTRY, Plot, PlotResult, plot_names, plot_run
from .report import write_report
from .search_report import is_search_dir, write_search_report

__all__ = [
    "REGISTRY",
    "Plot",
    "PlotResult",
    "compare_runs",
    "is_search_dir",
    "overlay_curves",
    "pca",
    "plot_names",
    "plot_run",
    "write_report",
    "write_search_report",
]

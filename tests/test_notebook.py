"""examples/quickstart.ipynb runs under a real Jupyter kernel: per-epoch lines and inline
figures in its outputs (so the example never rots)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_quickstart_notebook_runs_with_epoch_lines_and_inline_figures(tmp_path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in Jupyter
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    stdout = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    epoch_lines = [ln for ln in stdout.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in epoch_lines] == ["1/3", "2/3", "3/3"]
    assert all(" val_accuracy " in ln and " lr " in ln for ln in epoch_lines)
    assert "test accuracy:" in stdout and "predicted:" in stdout
    # plot_run's PNGs (curves, confusion matrix, per-class accuracy), then two returned Figures
    per_cell = [
        sum("image/png" in o.get("data", {}) for o in c.outputs)
        for c in nb.cells
        if c.cell_type == "code"
    ]
    assert per_cell == [0, 3, 1, 1]
    assert (tmp_path / "runs" / "quickstart" / "plots" / "curves.png").is_file()

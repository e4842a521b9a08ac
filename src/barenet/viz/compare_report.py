"""The HTML page of a comparison folder: the metrics table and the overlaid curves."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import fileio
from ..errors import FileError
from ..rundir import COMPARISON_CSV, COMPARISON_CURVES_PNG, REPORT_FILE
from . import html as H
from .compare import COLUMNS, _cell

TEXT_COLUMNS = {"label", "name", "dataset", "run_dir"}


def is_compare_dir(path: str | Path) -> bool:
    return (Path(path) / COMPARISON_CSV).is_file()


def _value(s: str) -> Any:
    """A CSV cell back to a number where it is one."""
    try:
        f = float(s)
    except ValueError:
        return s
    return int(f) if f.is_integer() and "." not in s and "e" not in s.lower() else f


def read_comparison(compare_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(compare_dir) / COMPARISON_CSV
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [{k: _value(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise FileError(f"cannot read {path}: {err}") from None


def write_compare_report(
    compare_dir: str | Path,
    out_path: str | Path | None = None,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``report.html`` (default: inside the folder) from ``rows`` (default: the folder's
    comparison.csv) and the folder's curves, and return its path."""
    root = Path(compare_dir)
    rows = list(rows) if rows is not None else read_comparison(root)
    out = Path(out_path) if out_path is not None else root / REPORT_FILE
    cols = [c for c in COLUMNS if any(c in r for r in rows)]
    accs = [r.get("val_accuracy") for r in rows]
    scored = [i for i, a in enumerate(accs) if isinstance(a, (int, float)) and not math.isnan(a)]
    best = max(scored, key=lambda i: accs[i]) if scored else None
    table = H.table(
        cols,
        [[_cell(r.get(c), c) for c in cols] for r in rows],
        text_cols=[i for i, c in enumerate(cols) if c in TEXT_COLUMNS],
        highlight=best,
    )
    intro = f"{len(rows)} runs" + (
        f"; highlighted: the best validation accuracy ({rows[best]['label']})."
        if best is not None
        else "."
    )
    sections = [("table", "Final metrics", [H.para(intro), table])]
    png = root / COMPARISON_CURVES_PNG
    if png.is_file():
        caption = (
            "Per epoch, one line per label (runs sharing a label: their mean, shaded min-max). "
            "Each line has its own dash and marker, so identical runs stay visible."
        )
        sections.append(("curves", "Curves", [H.figure(png, caption)]))
    subtitle = f"comparison folder {root.resolve()} · written {time.strftime('%Y-%m-%d %H:%M')}"
    return fileio.atomic_write_text(out, H.page("barenet compare", subtitle, sections))

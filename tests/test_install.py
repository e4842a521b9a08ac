"""Install and test: the `test` extra gives what the tests need; the light install has no torch;
without the data the test session ends in one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def extras() -> tuple[list[str], dict[str, list[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"], project["optional-dependencies"]


def names(reqs: list[str], table: dict[str, list[str]]) -> set[str]:
    """Distribution names a list of requirements pulls, expanding ``barenet[...]`` extras."""
    out: set[str] = set()
    for req in reqs:
        m = re.match(r"([A-Za-z0-9_.-]+)(\[([^\]]+)\])?", req)
        name, sub = m.group(1).lower(), m.group(3)
        if name == "barenet":
            for extra in sub.split(","):
                out |= names(table[extra.strip()], table)
        else:
            out.add(name)
    return out


def test_light_install_has_no_torch_and_test_extra_has_every_optional_part():
    core, table = extras()
    assert not any(r.lower().startswith("torch") for r in core)
    test = names(table["test"], table)
    for dist in (
        "torch",
        "pytest",
        "hypothesis",
        "psycopg2-binary",
        "tensorboardx",
        "scikit-learn",
        "optuna-dashboard",
        "nbclient",
        "ipykernel",
    ):
        assert dist in test, dist


def test_missing_data_ends_the_session_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "BARENET_DATA"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 4
    text = (proc.stdout + proc.stderr).strip()
    assert "Traceback" not in text and "KeyError" not in text
    assert len(text.splitlines()) == 1 and "BARENET_DATA is not set" in text

"""The README's Python examples run as written (each block in a fresh interpreter).

Blocks that use a trained run folder (``runs/mnist-mlp``) are left to the tests of predict,
export and interop, which build that folder themselves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
STANDALONE = [b for b in BLOCKS if "runs/" not in b]


def test_the_readme_has_python_examples():
    assert len(STANDALONE) >= 5, "the README lost its Python examples"


@pytest.mark.parametrize("code", STANDALONE, ids=[f"block{i}" for i in range(len(STANDALONE))])
def test_readme_block_runs(code, tmp_path, data_dir):
    env = {**os.environ, "BARENET_DATA": data_dir, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_config_reference_shows_every_key_and_its_default():
    from barenet.config import Config, to_dict

    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Config reference.*?```yaml\n(.*?)```", text, re.S)
    assert block, "the README lost its config reference"
    shown, real = yaml.safe_load(block.group(1)), to_dict(Config())

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
        return out

    shown, real = flat(shown), flat(real)
    assert sorted(set(real) - set(shown)) == [], "keys the reference leaves out"
    assert sorted(set(shown) - set(real)) == [], "keys the reference invents"
    assert {k: v for k, v in shown.items() if v != real[k]} == {}, "defaults that differ"


def test_the_components_table_names_errors_where_they_live():
    # The "user errors" row listed DataError under barenet.errors, where
    # `from barenet.errors import DataError` fails (it is barenet.data's).
    import importlib

    text = README.read_text(encoding="utf-8")
    table = text.split("## Components", 1)[1].split("\n## ", 1)[0]
    checked = 0
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        modules = re.findall(r"`(barenet[\w.]*)`", cells[1]) if len(cells) >= 3 else []
        if len(modules) != 1:
            continue
        module = importlib.import_module(modules[0])
        for name in re.findall(r"`([A-Z]\w*Error)`", cells[2]):
            assert hasattr(module, name), f"{modules[0]} has no {name}"
            checked += 1
    assert checked >= 3


def _outputs_shown() -> list[tuple[str, str]]:
    """(command, output) for each ```bash block of one command followed at once by a plain
    ``` block: the README's "real output" of doctor, lr-find and gradcheck."""
    text = README.read_text(encoding="utf-8")
    blocks = [
        (m.group(1), m.group(2), m.start(), m.end())
        for m in re.finditer(r"^```(\w*)\n(.*?)^```\n", text, re.S | re.M)
    ]
    pairs = []
    for (lang, body, _, end), (lang2, body2, start2, _) in zip(blocks, blocks[1:], strict=False):
        if lang == "bash" and lang2 == "" and start2 == end and len(body.splitlines()) == 1:
            pairs.append((body.split("#")[0].strip(), body2))
    return pairs


def test_the_readme_shows_real_output_of_its_commands():
    assert len(_outputs_shown()) >= 5, "the README lost its command outputs"


@pytest.mark.parametrize(
    "command, shown", _outputs_shown(), ids=[c.split()[-1] for c, _ in _outputs_shown()]
)
def test_readme_command_prints_what_the_readme_shows(command, shown, tmp_path, data_dir):
    # The doctor's, lr-find's and gradcheck's "real output" were typed into the README by hand
    # and not compared with what the commands print (stdout, then the stderr line).
    root = README.parent
    for folder in ("configs", "examples"):
        (tmp_path / folder).symlink_to(root / folder)  # the README runs from barenet's folder
    argv = command.split()
    assert argv[0] == "barenet"
    env = {**os.environ, "BARENET_DATA": data_dir, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-m", "barenet.cli", *argv[1:]], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    assert done.stdout + done.stderr == shown

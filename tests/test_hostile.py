"""Every hostile or mistaken input of issue 11 ("Why") in the input readers' area, run through
the real CLI in a subprocess: one line on stderr, exit 2, in under 5 s of CPU time and under
1 GB of peak memory (the child's own ru_utime + ru_stime and ru_maxrss, from os.wait4).

CPU time rather than wall time: the machine running the tests may be shared, and a probe
that waits for a core is not slow. Wall time is bounded too (WALL_SECONDS) to catch a hang.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from barenet import checkpoint, fileio
from barenet.cli import main
from barenet.cli.common import positive_int
from barenet.config import ConfigError, safe_name

SECONDS = 5.0
WALL_SECONDS = 30.0
MAX_RSS = 1 << 30
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}


# Forks and execs the CLI, then writes the child's exit code, CPU seconds and peak RSS. A
# process' ru_maxrss includes what it had before exec (a fork of the pytest process, which
# may be large), so the measuring parent is this small script, not pytest.
MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "barenet.cli", *sys.argv[2:]])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {ru.ru_utime + ru.ru_stime} {ru.ru_maxrss}")
"""


def barenet(*argv, cwd, timeout=WALL_SECONDS):
    """Run ``python -m barenet.cli ARGV``: (exit code, stdout, stderr, (CPU s, wall s), peak
    RSS bytes)."""
    stats = Path(cwd) / ".stats"
    start = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", MEASURE, stats, *map(str, argv)],
        capture_output=True, text=True, cwd=cwd, env=ENV, timeout=timeout,
    )  # fmt: skip
    wall = time.perf_counter() - start
    code, cpu, rss_kb = stats.read_text().split()
    stats.unlink()
    return int(code), p.stdout, p.stderr, (float(cpu), wall), int(rss_kb) * 1024


def assert_refused(result, *needles):
    code, _, err, seconds, rss = result
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("barenet: error: ")
    for needle in needles:
        assert needle in lines[0]
    cpu, wall = seconds
    assert cpu < SECONDS and wall < WALL_SECONDS, f"{cpu:.1f} s CPU, {wall:.1f} s wall"
    assert rss < MAX_RSS, f"{rss / 2**20:.0f} MiB"


def _bomb(path: Path, dims: tuple[int, ...], zeros: int) -> None:
    """A valid IDX header, then ``zeros`` zero bytes, gzipped (3 GB -> ~3 MB).

    Written as concatenated gzip members (which gzip readers must accept), one per 16 MiB
    of zeros, all copies of one compressed block: made in milliseconds.
    """
    header = b"\x00\x00\x08" + bytes([len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    block = 1 << 24
    member = gzip.compress(bytes(block), compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(gzip.compress(header + bytes(zeros % block), mtime=0))
        for _ in range(zeros // block):
            f.write(member)


@pytest.fixture(scope="module")
def bomb_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bomb") / "mnist"
    folder.mkdir()
    _bomb(folder / "train-images-idx3-ubyte.gz", (60000, 28, 28), 3 << 30)
    _bomb(folder / "train-labels-idx1-ubyte.gz", (60000,), 1 << 24)
    assert (folder / "train-images-idx3-ubyte.gz").stat().st_size < 4 << 20
    return folder.parent


def test_gzip_bomb_with_a_valid_header(bomb_dir, tmp_path):
    assert_refused(
        barenet("train", "--data-dir", bomb_dir, "--out", tmp_path / "r", "--quiet", cwd=tmp_path),
        "train-images-idx3-ubyte.gz",
        "trailing bytes",
    )


def test_huge_declared_dimensions(tmp_path):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    _bomb(folder / "train-images-idx3-ubyte.gz", (4_000_000_000, 28, 28), 0)
    _bomb(folder / "train-labels-idx1-ubyte.gz", (60000,), 60000)
    assert_refused(
        barenet("train", "--data-dir", tmp_path / "data", "--quiet", cwd=tmp_path),
        "header declares shape (4000000000, 28, 28)",
    )


@pytest.fixture(scope="module")
def run_template(tmp_path_factory):
    """A tiny real run folder (trained in-process once)."""
    from barenet.config import load_config
    from barenet.runner import train_run

    out = tmp_path_factory.mktemp("hostile") / "run"
    train_run(
        load_config(None, ["data.subset=0.02", "train.epochs=1", "model.sizes=[784, 8, 10]"]),
        out,
        progress=False,
        evaluate_test=False,
    )
    return out


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_weights_whose_metadata_claims_a_58_gib_model(run_template, tmp_path):
    run = _copy_run(run_template, tmp_path / "run")
    weights = run / "model.safetensors"
    state, meta = checkpoint.load_model_file(weights)
    meta["config"]["model"]["sizes"] = [784, 10_000_000, 10]
    checkpoint.save_model(weights, state, meta)
    (run / "config.yaml").unlink()
    assert_refused(barenet("info", run, cwd=tmp_path), "GiB", "parameters")


def test_weights_that_do_not_fit_their_config(run_template, tmp_path):
    run = _copy_run(run_template, tmp_path / "run")
    weights = run / "model.safetensors"
    state, meta = checkpoint.load_model_file(weights)
    meta["config"]["model"]["sizes"] = [784, 2000, 10]  # affordable, but not these weights
    checkpoint.save_model(weights, state, meta)
    # first the weights' own config disagrees with config.yaml: a folder mixing two runs
    assert_refused(barenet("info", run, cwd=tmp_path), "config.yaml", "mixes two runs")
    fileio.save_yaml(run / "config.yaml", meta["config"])  # now both say 2000: shapes differ
    assert_refused(barenet("info", run, cwd=tmp_path), "do not match")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_holding_nan_or_inf(run_template, tmp_path, value):
    # Training never saves them: such a file is corrupt. Before, `test` printed "loss nan",
    # `predict --json` printed NaN (not JSON) and `plot`/`report` died with an internal error.
    run = _copy_run(run_template, tmp_path / "run")
    weights = run / "model.safetensors"
    state, meta = checkpoint.load_model_file(weights)
    name = sorted(state)[0]
    state[name].flat[0] = value
    checkpoint.save_model(weights, state, meta)
    for command in ("test", "plot"):
        assert_refused(barenet(command, run, cwd=tmp_path), "model.safetensors", name, "NaN")


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder", "larger-than-header"])
def test_weights_that_are_not_a_regular_checkpoint(run_template, tmp_path, kind):
    run = _copy_run(run_template, tmp_path / "run")
    weights = run / "model.safetensors"
    if kind == "larger-than-header":
        with open(weights, "ab") as f:
            f.truncate(weights.stat().st_size + (4 << 30))  # sparse: 4 GB more on paper
    else:
        weights.unlink()
        {"dev-zero": lambda: weights.symlink_to("/dev/zero"), "fifo": lambda: os.mkfifo(weights),
         "folder": weights.mkdir}[kind]()  # fmt: skip
    needle = {"dev-zero": "not a regular file", "fifo": "not a regular file", "folder": "a folder"}
    assert_refused(
        barenet("info", run, cwd=tmp_path), "model.safetensors", needle.get(kind, "declares")
    )


def test_huge_header_length(run_template, tmp_path):
    run = _copy_run(run_template, tmp_path / "run")
    (run / "model.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}" * 100)
    assert_refused(barenet("info", run, cwd=tmp_path), "header length")


@pytest.mark.parametrize(
    "override, needles",
    [
        ("model.sizes=[784, 10000000, 10]", ("GiB", "7,950,000,010 parameters", "more than")),
        ("model.type=cnn", ("GiB", "activations", "more than")),  # with channels: 100000 below
        ("model.sizes=[784, 5]", ("model.sizes ends in 5", "10 classes")),
        ("optim.lr=.inf", ("optim.lr", "finite")),
        ("train.epochs=true", ("train.epochs", "integer")),
        ("name=../../x", ("name", "cannot be a folder name")),
        ("name=/tmp/abs", ("name", "cannot be a folder name")),
    ],
)
def test_bad_configs(tmp_path, override, needles):
    extra = ["--set", "model.blocks=[{channels: 100000}]"] if override == "model.type=cnn" else []
    assert_refused(barenet("train", "--set", override, *extra, "--quiet", cwd=tmp_path), *needles)
    assert not (tmp_path / "runs").exists()  # nothing written, inside or outside runs/
    assert not Path("/tmp/abs").exists() and not (tmp_path.parent.parent / "x").exists()


def test_duplicate_keys_in_a_run_config(tmp_path):
    (tmp_path / "c.yaml").write_text("optim:\n  lr: 0.1\ntrain: {epochs: 1}\noptim:\n  lr: 9\n")
    assert_refused(barenet("train", tmp_path / "c.yaml", cwd=tmp_path), "duplicate key 'optim'")


@pytest.mark.parametrize("exists", [False, True])
def test_explicit_data_dir_is_authoritative(tmp_path, exists):
    missing = tmp_path / "no-data"
    if exists:
        missing.mkdir()
    assert "BARENET_DATA" in ENV  # real data is there: it must not be used instead
    assert_refused(
        barenet("train", "--data-dir", missing, "--quiet", cwd=tmp_path),
        f"data folder {missing}",
        "does not exist" if not exists else "does not hold the files",
    )
    (tmp_path / "c.yaml").write_text(f"data: {{data_dir: {missing}}}\n")
    assert_refused(barenet("train", tmp_path / "c.yaml", "--quiet", cwd=tmp_path), str(missing))


def test_diverging_training_is_one_line_without_numpy_warnings(tmp_path):
    result = barenet(
        "train", "--set", "optim.lr=1e30", "--set", "data.subset=0.02", "--set", "train.epochs=1",
        "--set", "model.sizes=[784, 8, 10]", "--out", tmp_path / "r", "--quiet", cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    code, _, err, _, _ = result
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "became" in err and "RuntimeWarning" not in err


def test_closed_stdout_pipe_ends_quietly(run_template, tmp_path):
    cmd = f"{sys.executable} -m barenet.cli test {run_template} --json | head -c1"
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=ENV, timeout=120)
    assert p.stdout == "{" and p.stderr == ""
    # A reader that is gone before the first write: EPIPE for certain.
    cmd = f"set -o pipefail; {sys.executable} -m barenet.cli test {run_template} --json | true"
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=ENV, timeout=120)
    assert p.returncode == 141 and p.stderr == ""  # what ls or git report on SIGPIPE


def test_sigterm_exits_143_with_one_line(tmp_path):
    p = subprocess.Popen(
        [sys.executable, "-m", "barenet.cli", "train", "--set", "train.epochs=50",
         "--out", tmp_path / "r", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=tmp_path, text=True,
    )  # fmt: skip
    assert p.stdout.readline().startswith("training")
    # the run exists once its config.yaml does (a fixed 1 s sleep assumed it would by then)
    deadline = time.monotonic() + 60
    while not (tmp_path / "r" / "config.yaml").exists() and time.monotonic() < deadline:
        assert p.poll() is None, p.communicate()
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143
    last = err.strip().splitlines()
    assert len(last) == 1 and last[0].startswith("barenet: terminated; run "), err
    assert "resume with: barenet train --resume" in last[0]


def python_c(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV,
                          timeout=WALL_SECONDS)  # fmt: skip


def signal_during_import(module: str, sig: str, command: bool, then: str) -> str:
    """A script that sends ``sig`` to itself when ``module`` starts to import, then runs
    ``then``; with ``command``, argv[0] is the barenet console script's."""
    return (
        "import os, signal, sys\n"
        + ("sys.argv[0] = os.path.join('bin', 'barenet')\n" if command else "")
        + "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {module!r}:\n"
        f"            os.kill(os.getpid(), signal.{sig})\n"
        "sys.meta_path.insert(0, Hook())\n" + then
    )


HANDLERS_UNTOUCHED = (
    "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
    "assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL\n"
)


@pytest.mark.parametrize(
    "sig, code, line", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")]
)
@pytest.mark.parametrize("module", ["barenet.cli.search", "barenet.threads"])
def test_a_signal_while_the_command_loads_is_one_line(sig, code, line, module):
    # Before: Ctrl-C while `barenet` imported its commands (barenet.cli.search) or the
    # barenet package itself (barenet.threads) printed a KeyboardInterrupt traceback, and
    # SIGTERM killed it silently. An import hook sends the signal there, argv[0] the
    # console script's.
    p = python_c(signal_during_import(module, sig, True, "from barenet.cli import main\n"))
    assert (p.returncode, p.stdout, p.stderr) == (code, "", f"barenet: {line}\n")


def test_ctrl_c_while_a_script_imports_the_cli_is_a_keyboard_interrupt():
    # A notebook's "interrupt kernel" during `import barenet.cli` killed the process (the
    # quiet handlers of the command were installed in any process).
    then = "try:\n    import barenet.cli\nexcept KeyboardInterrupt:\n    print('caught')\n"
    p = python_c(signal_during_import("barenet.cli.search", "SIGINT", False, then))
    assert (p.returncode, p.stdout) == (0, "caught\n"), p.stderr


@pytest.mark.parametrize(
    "prelude",
    [
        "import signal\n",  # a script
        "import os, signal, sys\nsys.argv[0] = os.path.join('bin', 'barenet')\n",  # a launcher
    ],
)
@pytest.mark.parametrize("module", ["barenet", "barenet.cli"])
def test_importing_barenet_leaves_signal_handlers_alone(prelude, module):
    p = python_c(f"{prelude}import {module}\n{HANDLERS_UNTOUCHED}")
    assert p.returncode == 0, p.stderr


def test_the_command_builds_its_parsers_with_quiet_handlers():
    # The parsers import matplotlib: a Ctrl-C there raised KeyboardInterrupt inside its C
    # extension's import, reported as "internal error: ImportError: initialization failed"
    # and crashing Python at exit (1-3% of Ctrl-Cs 0.3-0.5 s into `barenet info`).
    script = (
        "import os, signal, sys\n"
        "sys.argv[0] = os.path.join('bin', 'barenet')\n"
        "import barenet.cli as cli\n"
        "from barenet import startup\n"
        "real = cli.build_parser\n"
        "def build_parser():\n"
        "    assert signal.getsignal(signal.SIGINT) is startup._exit_now\n"
        "    assert signal.getsignal(signal.SIGTERM) is startup._exit_now\n"
        "    return real()\n"
        "cli.build_parser = build_parser\n"
        "code = cli.main(['info', os.devnull + '-missing'])\n"
        f"{HANDLERS_UNTOUCHED}"
        "sys.exit(code)\n"
    )
    p = python_c(script)
    assert p.returncode == 2 and p.stderr.startswith("barenet: error: "), p.stderr


def test_a_signal_while_the_parsers_are_built_is_one_line(monkeypatch, capsys):
    import barenet.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(barenet.cli, "build_parser", interrupted)
    assert main(["info", "x"]) == 130
    assert capsys.readouterr().err == "barenet: interrupted\n"


# -- in-process: the kinds of errors, names, permissions --------------------------------------
def test_internal_error_names_a_log_with_the_traceback(monkeypatch, capsys):
    import barenet.runner

    def bug(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.delenv("BARENET_DEBUG", raising=False)
    monkeypatch.setattr(barenet.runner, "evaluate_run", bug)
    assert main(["test", "some-run"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "internal error: ZeroDivisionError: a bug" in err
    log = Path(err.split("traceback in ")[1].rstrip(")"))
    assert "Traceback" in log.read_text() and "def bug" not in err
    assert "ZeroDivisionError: a bug" in log.read_text()
    log.unlink()


@pytest.mark.parametrize(
    "err, code, needle",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/runs/x/model.safetensors"), 2,
         "No space left on device: /runs/x/model.safetensors"),
        (PermissionError(errno.EACCES, "Permission denied", "/etc/x"), 2,
         "Permission denied: /etc/x"),
        (OSError(errno.EBADF, "Bad file descriptor"), 1, "internal error: OSError"),
        (ValueError("not a user error"), 1, "internal error: ValueError"),
        (ConfigError("bad key"), 2, "error: bad key"),
    ],
)  # fmt: skip
def test_errors_by_kind(monkeypatch, capsys, err, code, needle):
    import barenet.runner

    def fail(*a, **k):
        raise err

    monkeypatch.delenv("BARENET_DEBUG", raising=False)
    monkeypatch.setattr(barenet.runner, "evaluate_run", fail)
    assert main(["test", "some-run"]) == code
    line = capsys.readouterr().err.strip()
    assert len(line.splitlines()) == 1 and needle in line
    if code == 1:
        Path(line.split("traceback in ")[1].rstrip(")")).unlink()


@pytest.mark.parametrize(
    "name", ["../../x", "/abs", ".hidden", "..", "", "a/b", "a\\b", " x", "x\x00"]
)
def test_unsafe_names_are_refused(name):
    with pytest.raises(ConfigError, match="cannot be a folder name"):
        safe_name(name, "study")


@pytest.mark.parametrize("name", ["mnist-mlp", "study_1", "lr=0.1,bs=64", "x.y", "Ünïcode"])
def test_safe_names_pass(name):
    assert safe_name(name) == name


def test_positive_int_for_counts():
    assert positive_int("3") == 3
    import argparse

    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        paths = [
            fileio.atomic_write_text(tmp_path / "a.txt", "x"),
            fileio.save_json(tmp_path / "sub" / "m.json", {"a": 1}),
            checkpoint.save_model(tmp_path / "w.safetensors", {"w": __import__("numpy").ones(2)}),
        ]
    finally:
        os.umask(old)
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o777 & ~umask


def test_run_folder_files_are_readable_by_others(run_template):
    mask = os.umask(0)
    os.umask(mask)
    for f in run_template.iterdir():
        if f.is_file():
            assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f.name


def test_metrics_json_nesting_bomb(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(fileio.FileError, match="nested too deeply"):
        fileio.load_json(path)
    assert json.loads("[[1]]") == [[1]]  # the module's json is the standard one

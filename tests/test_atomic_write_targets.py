"""What an atomic write may replace. ``os.replace`` swaps any name for the new file: run as
root, ``barenet export RUN --out /dev/null`` replaced the /dev/null device with a regular file
(every later ``> /dev/null`` in the machine then filled it). A device, FIFO or socket is never
replaced: the write is refused naming it, and the special file stays what it was."""

from __future__ import annotations

import os
import stat

import pytest

from barenet import fileio
from barenet.cli import main
from barenet.errors import FileError


def test_a_fifo_is_not_replaced(tmp_path):
    fifo = tmp_path / "out.onnx"
    os.mkfifo(fifo)
    with pytest.raises(FileError, match="out.onnx: not a regular file"):
        fileio.atomic_write_bytes(fifo, b"data")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.onnx"]  # no temp file left


def test_export_to_a_fifo_is_one_line(mlp_run, tmp_path, capsys):
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    code = main(["export", str(mlp_run), "--format", "onnx", "--out", str(fifo)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a regular file" in err, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_links_and_regular_files_are_still_replaced(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("kept")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    fileio.atomic_write_text(link, "new")  # the link is replaced, what it named is not
    assert not link.is_symlink() and link.read_text() == "new" and target.read_text() == "kept"
    fileio.atomic_write_text(target, "over")
    assert target.read_text() == "over"


def test_a_folder_that_refuses_the_temporary_names_the_file(mlp_run, tmp_path, capsys):
    """/proc (or a folder without write permission, for anyone but root) refuses the
    temporary file itself: the error named '/proc/.model.onnx.k3j2x.tmp', a random name."""
    code = main(["export", str(mlp_run), "--out", "/proc/model.onnx"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.endswith(": /proc/model.onnx\n") and ".tmp" not in err, err

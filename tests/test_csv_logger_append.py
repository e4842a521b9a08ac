"""CSVLogger(append=True) reads the history file already there: every odd file in its place
ends in one FileError naming it, at once, and the file is left as it was."""

from __future__ import annotations

import csv
import os
import signal

import pytest
from test_callbacks import drive

from barenet.errors import FileError
from barenet.train import CSVLogger

ODD_FILES = {
    "binary": b"\x81\xfe\x00\xff" * 64,
    "huge-line": b"epoch," + b"x" * 200_000 + b"\n1,2\n",
    "another-separator": b"epoch;loss\n1;0.5\n",
    "torn-row": b"epoch,loss,accuracy\n1,0.5\n",
    "extra-fields": b"epoch,loss\n1,0.5,0.9,7\n",
    "twice-a-column": b"epoch,loss,epoch\n1,0.5,2\n",
    "open-quote": b'epoch,loss\n1,"0.5\n',
}


@pytest.mark.parametrize("name", ODD_FILES)
def test_append_refuses_a_file_it_would_garble(tmp_path, name):
    path = tmp_path / "history.csv"
    path.write_bytes(ODD_FILES[name])
    with pytest.raises(FileError, match="history.csv") as e:
        drive(CSVLogger(path, append=True), [0.3])
    assert "\n" not in str(e.value)
    assert path.read_bytes() == ODD_FILES[name]  # nothing rewritten


def test_append_refuses_a_folder_and_a_fifo_without_blocking(tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(FileError, match="folder"):
        drive(CSVLogger(folder, append=True), [0.3])
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)

    def hung(*_):
        raise TimeoutError("CSVLogger(append=True) blocked opening a FIFO")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        with pytest.raises(FileError, match="not a regular file"):
            drive(CSVLogger(fifo, append=True), [0.3])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_append_reads_a_byte_order_mark_and_new_columns(tmp_path):
    path = tmp_path / "history.csv"
    path.write_bytes(b"\xef\xbb\xbfepoch,loss\r\n1,0.5\r\n\r\n")  # as a spreadsheet saves it
    drive(CSVLogger(path, append=True), [0.3])
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["epoch"], r["loss"], r["val_loss"]) for r in rows] == [
        ("1", "0.5", ""),
        ("1", "", "0.3"),
    ]


@pytest.mark.parametrize("separator", ["", ", ", '"', "\n", 5])
def test_a_separator_csv_cannot_use_is_refused_before_training(tmp_path, separator):
    with pytest.raises(ValueError, match="separator"):
        CSVLogger(tmp_path / "h.csv", separator=separator)

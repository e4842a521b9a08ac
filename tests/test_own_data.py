"""Data of one's own in the MNIST layout (IDX files under --data-dir DIR/mnist): a small
data set, two classes in use of the ten, a subset that rounds to nothing. Each trains, tests
and plots correctly, or stops with one line and exit code 2."""

from __future__ import annotations

import numpy as np
from test_cli import assert_one_line_error, run_cli

from barenet.data.idx import write_idx


def write_mnist_layout(root, images, labels, test_images, test_labels):
    folder = root / "mnist"
    folder.mkdir(parents=True)
    write_idx(folder / "train-images-idx3-ubyte", images)
    write_idx(folder / "train-labels-idx1-ubyte", labels)
    write_idx(folder / "t10k-images-idx3-ubyte", test_images)
    write_idx(folder / "t10k-labels-idx1-ubyte", test_labels)
    return root


def blobs(n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images with a bright square whose place tells the class (learnable)."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % classes).astype(np.uint8)
    images = rng.integers(0, 40, (n, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 4)
        images[i, 2 + 6 * r : 8 + 6 * r, 2 + 6 * col : 8 + 6 * col] = 255
    return images, labels


def test_subset_that_leaves_no_training_sample_is_one_line_exit_2(tmp_path, capsys):
    images, labels = blobs(40, 10)
    data = write_mnist_layout(tmp_path / "data", images, labels, images[:10], labels[:10])
    code, _, err = run_cli(
        capsys,
        "train",
        "--data-dir",
        data,
        "--set",
        "data.subset=0.01",
        "--set",
        "train.epochs=1",
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert_one_line_error(code, err, "data.subset")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_no_validation_samples_names_the_real_cause(tmp_path, capsys):
    images, labels = blobs(20, 10)  # 2 per class: round(0.1 * 2) = 0 held out
    data = write_mnist_layout(tmp_path / "data", images, labels, images[:10], labels[:10])
    run = tmp_path / "run"
    assert (
        run_cli(
            capsys, "train", "--data-dir", data, "--set", "train.epochs=1", "--out", run, "--quiet"
        )[0]
        == 0
    )
    code, _, err = run_cli(capsys, "test", run, "--split", "val", "--data-dir", data)
    assert_one_line_error(code, err, "val_fraction 0.1")
    assert "val_fraction is 0" not in err

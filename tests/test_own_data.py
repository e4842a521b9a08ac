"""Data of one's own in the MNIST layout (IDX files under --data-dir DIR/mnist): a small
data set, two classes in use of the ten, a subset that rounds to nothing. Each trains, tests
and plots correctly, or stops with one line and exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import assert_one_line_error, run_cli

from barenet.cli import main
from barenet.data.idx import write_idx
from barenet.viz.confusion import plot_per_class
from barenet.viz.style import plt


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


@pytest.fixture(scope="module")
def two_class_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    images, labels = blobs(300, 2)
    test_images, test_labels = blobs(60, 2, seed=1)
    data = write_mnist_layout(root / "data", images, labels, test_images, test_labels)
    argv = ["train", "--data-dir", data, "--set", "train.epochs=1", "--out", root / "run"]
    assert main([str(a) for a in [*argv, "--set", "model.sizes=[784, 16, 10]", "--quiet"]]) == 0
    return root / "run", data


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
    images, labels = blobs(4, 4)  # round(0.1 * 4) = 0 held out
    data = write_mnist_layout(tmp_path / "data", images, labels, images, labels)
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


def test_json_of_a_test_set_without_some_classes_is_strict_json(two_class_run, capsys):
    run, data = two_class_run
    code, out, _ = run_cli(capsys, "test", run, "--data-dir", data, "--json")
    assert code == 0
    assert "NaN" not in out  # not JSON: JavaScript's JSON.parse, Go, Rust reject it
    result = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    per_class = result["per_class_accuracy"]
    assert per_class[2:] == [None] * 8 and all(0 <= a <= 1 for a in per_class[:2])


def test_per_class_plot_does_not_show_empty_classes_as_failed(two_class_run, capsys, monkeypatch):
    run, data = two_class_run
    seen = {}

    def spy(acc, classes, out_path=None, counts=None, overall=None):
        seen["acc"], seen["counts"] = np.asarray(acc), counts
        return plot_per_class(acc, classes, out_path, counts=counts, overall=overall)

    monkeypatch.setattr("barenet.viz.plots.plot_per_class", spy)
    code, _, err = run_cli(
        capsys, "plot", run, "--data-dir", data, "--what", "confusion", "--out", run / "plots"
    )
    assert code == 0, err
    assert (run / "plots" / "per_class_accuracy.png").is_file()
    # classes 2..9 have no test image: no accuracy, not 0% (which drew them as the worst)
    assert np.isnan(seen["acc"][2:]).all() and np.isfinite(seen["acc"][:2]).all()


def test_per_class_plot_labels_and_ranks_only_classes_with_images():
    acc = np.array([0.9, 0.5, np.nan, np.nan])
    fig = plot_per_class(acc, list("abcd"), counts=np.array([10, 10, 0, 0]), overall=0.7)
    left, right = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in left.texts]
    assert labels[2:] == ["no images", "no images"] and "nan" not in " ".join(labels)
    colors = [tuple(p.get_facecolor()[:3]) for p in right.patches]
    red = colors[1]  # b, the worst class with images
    assert colors[0] == red and all(c != red or i < 2 for i, c in enumerate(colors))
    assert np.isfinite(right.get_xlim()).all()
    plt.close(fig)


@pytest.mark.parametrize("split", ["train", "test"])
def test_idx_files_without_images_are_one_line_exit_2(tmp_path, capsys, split):
    images, labels = blobs(40, 10)
    empty = (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    parts = [*empty, images, labels] if split == "train" else [images, labels, *empty]
    data = write_mnist_layout(tmp_path / "data", *parts)
    code, _, err = run_cli(
        capsys, "train", "--data-dir", data, "--set", "train.epochs=1",
        "--out", tmp_path / "run", "--quiet",
    )  # fmt: skip
    assert_one_line_error(code, err, "no images")
    assert ("train-images" if split == "train" else "t10k-images") in err


def test_a_bad_test_file_stops_the_run_before_training(tmp_path, capsys):
    """Test images of another size were found only after the last epoch, leaving a trained
    run folder with no metrics; the test files are now checked before the first epoch."""
    images, labels = blobs(40, 10)
    wide = np.zeros((10, 32, 32), np.uint8)
    data = write_mnist_layout(tmp_path / "data", images, labels, wide, labels[:10])
    code, _, err = run_cli(
        capsys, "train", "--data-dir", data, "--set", "train.epochs=1",
        "--out", tmp_path / "run", "--quiet",
    )  # fmt: skip
    assert_one_line_error(code, err, "t10k-images")
    assert "(10, 32, 32)" in err
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert not (tmp_path / "run" / "history.csv").exists()

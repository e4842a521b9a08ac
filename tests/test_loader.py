"""Preprocessing, stratified splits/subsets and the DataLoader."""

import numpy as np
import pytest

from barenet.data import (
    DATASET_STATS,
    ArrayDataset,
    DataLoader,
    background_value,
    load,
    preprocess,
    subset,
    train_val_split,
)

# ---- preprocess ----

ALL_LEVELS = np.arange(256, dtype=np.uint8).reshape(16, 16)


def test_preprocess_ranges_and_dtype():
    s = preprocess(ALL_LEVELS, "scale")
    c = preprocess(ALL_LEVELS, "center")
    assert s.dtype == np.float32 and c.dtype == np.float32 and s.shape == (16, 16)
    assert s.min() == 0.0 and s.max() == 1.0
    assert c.min() == -0.5 and c.max() == 0.5
    np.testing.assert_allclose(s, ALL_LEVELS / 255.0, rtol=1e-7)
    np.testing.assert_allclose(c, ALL_LEVELS / 255.0 - 0.5, atol=1e-7)
    d = preprocess(ALL_LEVELS, "scale", dtype=np.float64)
    assert d.dtype == np.float64
    np.testing.assert_array_equal(d, ALL_LEVELS / 255.0)


def test_standardize_stats_sources():
    x = ALL_LEVELS
    for name, (mean, std) in DATASET_STATS.items():
        np.testing.assert_allclose(
            preprocess(x, dataset=name), (x / 255.0 - mean) / std, rtol=1e-6, atol=1e-6
        )
    explicit = preprocess(x, mean=0.5, std=0.25, dataset="mnist")  # explicit values win
    np.testing.assert_allclose(explicit, (x / 255.0 - 0.5) / 0.25, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="mean and std"):
        preprocess(x)
    with pytest.raises(ValueError, match="unknown preprocess method"):
        preprocess(x, "whiten")
    with pytest.raises(TypeError):
        preprocess(x.astype(np.float32), "scale")


def test_background_value_is_zero_pixel():
    for method in ("scale", "center", "standardize"):
        kw = {"dataset": "fashion-mnist"} if method == "standardize" else {}
        zero = preprocess(np.zeros(1, np.uint8), method, dtype=np.float64, **kw)[0]
        assert background_value(method, **kw) == zero
    assert background_value("standardize", dataset="mnist") == pytest.approx(-0.1307 / 0.3081)


def test_standardize_mnist_train_is_zero_mean_unit_std():
    x, _ = load("mnist", "train", download=False)
    z = preprocess(x, dataset="mnist")
    assert z.dtype == np.float32 and z.shape == x.shape
    assert abs(float(z.mean())) < 1e-3  # float32 pairwise sums: accurate to ~1e-6 here
    assert abs(float(z.std()) - 1.0) < 1e-3


# ---- splits ----


def _labels(seed=0, n=5000):
    # Uneven class sizes so the per-class proportions really are tested.
    return np.random.default_rng(seed).choice(10, size=n, p=np.linspace(1, 3, 10) / 20)


def test_train_val_split_stratified():
    y = _labels()
    train, val = train_val_split(y, 0.2, np.random.default_rng(1))
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)  # sorted, unique
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))
    counts = np.bincount(y, minlength=10)
    val_counts = np.bincount(y[val], minlength=10)
    np.testing.assert_array_equal(val_counts, np.floor(0.2 * counts + 0.5))


def test_train_val_split_seeds():
    y = _labels()
    a = train_val_split(y, 0.1, np.random.default_rng(7))
    b = train_val_split(y, 0.1, np.random.default_rng(7))
    c = train_val_split(y, 0.1, np.random.default_rng(8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    np.testing.assert_array_equal(train_val_split(y, 0.1, 7)[1], a[1])  # int seed accepted
    with pytest.raises(TypeError, match="rng"):
        train_val_split(y, 0.1)


def test_train_val_split_edges():
    y = _labels(n=100)
    train, val = train_val_split(y, 0.0, np.random.default_rng(0))
    assert val.size == 0 and train.size == 100
    with pytest.raises(ValueError):
        train_val_split(y, 1.0, np.random.default_rng(0))
    # Non-contiguous, non-zero-based labels.
    y2 = np.repeat([3, 7, 42], [10, 20, 30])
    _, val = train_val_split(y2, 0.5, np.random.default_rng(0))
    assert sorted(np.unique(y2[val], return_counts=True)[1]) == [5, 10, 15]


def test_subset():
    y = _labels()
    idx = subset(y, 0.3, np.random.default_rng(2))
    counts = np.bincount(y, minlength=10)
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=10), np.floor(0.3 * counts + 0.5))
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(subset(y, 0.3, np.random.default_rng(2)), idx)
    assert not np.array_equal(subset(y, 0.3, np.random.default_rng(3)), idx)
    np.testing.assert_array_equal(subset(y, 1.0, np.random.default_rng(0)), np.arange(len(y)))
    with pytest.raises(ValueError):
        subset(y, 0.0, np.random.default_rng(0))


def test_splits_of_regression_targets_are_random_not_empty():
    """Continuous targets are every value its own class: per-class rounding gave an empty
    validation set (and subset(0.5) every sample); they are pooled and split at random."""
    y = np.random.default_rng(0).standard_normal(100)
    train, val = train_val_split(y, 0.2, rng=0)
    assert len(val) == 20 and len(train) == 80
    assert len(subset(y, 0.5, rng=0)) == 50
    col = y[:, None]  # (N, 1) targets, as MSELoss wants for a (N, 1) output
    train2, val2 = train_val_split(col, 0.2, rng=0)
    assert len(val2) == 20
    np.testing.assert_array_equal(np.sort(np.concatenate([train2, val2])), np.arange(100))


def test_singleton_classes_are_pooled_others_stay_stratified():
    y = np.concatenate([np.repeat([0, 1], 50), np.arange(2, 52)])  # two classes + 50 ids
    _, val = train_val_split(y, 0.1, rng=3)
    assert np.bincount(y[val])[:2].tolist() == [5, 5]  # stratified as before
    assert (y[val] >= 2).sum() == 5  # the 50 singletons: 10% of them, not none
    with pytest.raises(ValueError, match="scalar"):
        train_val_split(np.float64(1.0), 0.1, rng=0)


# ---- DataLoader ----


def _data(n=103):
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 6)
    return x, np.arange(n)


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_once_per_epoch(shuffle):
    x, y = _data()
    loader = DataLoader(x, y, batch_size=10, shuffle=shuffle, rng=np.random.default_rng(0))
    assert len(loader) == 11
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == 11 and [len(b[1]) for b in batches] == [10] * 10 + [3]
        seen = np.concatenate([yb for _, yb in batches])
        np.testing.assert_array_equal(np.sort(seen), y)
        for xb, yb in batches:
            np.testing.assert_array_equal(xb, x[yb])  # inputs stay paired with targets
        if not shuffle:
            np.testing.assert_array_equal(seen, y)
            assert np.shares_memory(batches[0][0], x)  # slices: views, no copy


def test_shuffle_differs_across_epochs_and_is_seeded():
    x, y = _data()

    def epochs(seed):
        loader = DataLoader(x, y, batch_size=16, shuffle=True, rng=np.random.default_rng(seed))
        return [np.concatenate([yb for _, yb in loader]) for _ in range(3)]

    a, b, c = epochs(0), epochs(0), epochs(1)
    for ea, eb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    assert not np.array_equal(a[0], c[0])


def test_rng_may_be_a_seed_as_for_the_layers():
    """rng=3 is default_rng(3); no rng is seed 0 (an int used to fail at the first epoch)."""
    x, y = _data()

    def order(**kw):
        return np.concatenate([yb for _, yb in DataLoader(x, y, batch_size=16, shuffle=True, **kw)])

    np.testing.assert_array_equal(order(rng=3), order(rng=np.random.default_rng(3)))
    np.testing.assert_array_equal(order(), order(rng=0))


def test_drop_last_and_len():
    x, y = _data(103)
    loader = DataLoader(x, y, batch_size=10, drop_last=True)
    assert len(loader) == 10 and loader.num_samples == 100
    assert [len(yb) for _, yb in loader] == [10] * 10
    assert len(DataLoader(x, y, batch_size=103)) == 1
    assert len(DataLoader(x, y, batch_size=200)) == 1
    assert len(DataLoader(x, y, batch_size=200, drop_last=True)) == 0
    assert list(DataLoader(x, y, batch_size=200, drop_last=True)) == []
    assert list(DataLoader(x[:0], y[:0], batch_size=4)) == []  # never an empty batch
    x, y = _data(100)
    assert len(DataLoader(x, y, batch_size=10)) == 10  # exact multiple: no extra batch


def test_transform_and_dataset_and_validation():
    x, y = _data(20)
    calls = []

    def transform(xb, rng):
        calls.append(rng)
        return xb * 2

    rng = np.random.default_rng(0)
    loader = DataLoader(ArrayDataset(x, y), batch_size=8, transform=transform, rng=rng)
    out = np.concatenate([xb for xb, _ in loader])
    np.testing.assert_array_equal(out, x * 2)
    assert len(calls) == 3 and all(r is rng for r in calls)
    np.testing.assert_array_equal(x, _data(20)[0])  # source untouched
    ds = ArrayDataset(x, y)
    assert len(ds) == 20 and ds[3][1] == 3
    with pytest.raises(ValueError):
        ArrayDataset(x, y[:-1])
    with pytest.raises(ValueError):
        DataLoader(x, y[:-1])
    # shuffle without rng: seed 0, as the layers (torch users leave it out)
    a = [yb for _, yb in DataLoader(x, y, batch_size=8, shuffle=True)]
    b = [yb for _, yb in DataLoader(x, y, batch_size=8, shuffle=True, rng=np.random.default_rng(0))]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(np.concatenate(a), y)
    with pytest.raises(ValueError):
        DataLoader(x, y, batch_size=0)


def test_nchw_view_works():
    x = np.zeros((10, 784), np.float32)
    loader = DataLoader(x.reshape(-1, 1, 28, 28), np.arange(10), batch_size=4)
    assert [xb.shape for xb, _ in loader] == [(4, 1, 28, 28)] * 2 + [(2, 1, 28, 28)]


def test_dataset_attribute_like_torch() -> None:
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    loader = DataLoader(x, y, batch_size=4)
    assert len(loader.dataset) == 10 and len(loader) == 3
    xs, ys = loader.dataset[3]
    np.testing.assert_array_equal(xs, [6.0, 7.0])
    assert ys == 3


def test_python_lists_batch_as_arrays_shuffled_or_not() -> None:
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    for shuffle in (False, True):
        ours = list(DataLoader(x.tolist(), y.tolist(), batch_size=4, shuffle=shuffle, rng=3))
        ref = list(DataLoader(x, y, batch_size=4, shuffle=shuffle, rng=3))
        for (xb, yb), (xr, yr) in zip(ours, ref, strict=True):
            assert isinstance(xb, np.ndarray) and isinstance(yb, np.ndarray)
            np.testing.assert_array_equal(xb, xr)
            np.testing.assert_array_equal(yb, yr)

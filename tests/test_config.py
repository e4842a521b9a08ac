import re

import pytest

from barenet.config import ConfigError, apply_overrides, load_config, to_dict, validate


def test_defaults_validate_and_round_trip():
    cfg = load_config()
    assert cfg.model.sizes == [784, 512, 256, 10]
    assert validate(to_dict(cfg)) == cfg


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  sizes: [784, 32, 10]\noptim:\n  lr: 0.5\n")
    cfg = load_config(p, ["optim.lr=0.05", "train.epochs=3", "model.activation=tanh"])
    assert cfg.optim.lr == 0.05 and cfg.train.epochs == 3
    assert cfg.model.sizes == [784, 32, 10] and cfg.model.activation == "tanh"


@pytest.mark.parametrize(
    "override, needle",
    [
        ("optim.lrr=0.1", "optim.lrr: unknown key (allowed: alpha, betas, decay_bias"),
        ("optim.lr=-1", "optim.lr: Input should be greater than 0"),
        ("model.activation=swish", "model.activation: Input should be 'relu', 'leaky_relu'"),
        ("train.epochs=many", "train.epochs: Input should be a valid integer"),
        ("data.val_fraction=1.5", "data.val_fraction: Input should be less than 1"),
        ("model.sizes=[784]", "model.sizes needs at least"),
        # a key under the wrong section (or none) names where it lives
        (
            "epochs=3",
            "epochs: unknown key (allowed: data, model, name, optim, schedule, seed, "
            "train); did you mean train.epochs?",
        ),
        ("train.lr=0.1", "; did you mean optim.lr?"),
        ("train.epoch=3", "train.epoch: unknown key (allowed: batch_size"),  # a typo
        ("train.epoch=3", "; did you mean train.epochs?"),
        ("optim.momentun=0.9", "; did you mean optim.momentum?"),
    ],
)
def test_bad_values_name_the_key(override, needle):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    msg = str(info.value)
    assert needle in msg
    assert "\n" not in msg


def test_unknown_top_level_section():
    with pytest.raises(ConfigError, match=r"modle: unknown key \(allowed: data, model, name"):
        validate({"modle": {}})
    with pytest.raises(ConfigError) as info:  # no key of that name anywhere: no guess
        validate({"model": {"foo": 1}})
    assert "did you mean" not in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


def test_override_syntax():
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["optim.lr"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"optim": 3}, ["optim.lr=1"])
    assert apply_overrides({}, ["a.b=[1, 2]"]) == {"a": {"b": [1, 2]}}


def test_cnn_needs_blocks():
    with pytest.raises(ConfigError, match="needs at least one entry in model.blocks"):
        validate({"model": {"type": "cnn"}})


# -- validation that matches intent ------------------------------------------------------------
@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.epochs=true", "train.epochs: Input should be a valid integer"),
        ("train.epochs=2.0", "train.epochs: Input should be a valid integer"),
        ("seed=false", "seed: Input should be a valid integer"),
        ("model.sizes=[784, true, 10]", "model.sizes.1: Input should be a valid integer"),
        ("data.augment.enabled=1", "data.augment.enabled: Input should be a valid boolean"),
        ("optim.lr=true", "optim.lr: expected a number, not a boolean"),
        ("optim.lr=.inf", "optim.lr: Input should be a finite number"),
        ("optim.lr=1e400", "optim.lr: Input should be a finite number"),
        ("schedule.gamma=.nan", "schedule.gamma: Input should be a finite number"),
        ("optim.betas=[0.9, 1.0]", "optim.betas must both be in [0, 1)"),
        ("data.augment.scale=[1.2, 0.8]", "0 < low <= high"),
        ("name=../../x", "cannot be a folder name"),
        ("name=/etc", "cannot be a folder name"),
        ("model.sizes=[784, 5]", "model.sizes ends in 5 outputs but mnist has 10 classes"),
        ("model.sizes=[100, 10]", "the first size must be 784"),
        ("data.augment={enabled: true, enabled: false}", "duplicate key 'enabled'"),
        # these three were plain (lax) types: 1 read as true, true and 2.0 as counts
        ("train.watch=1", "train.watch: Input should be a valid boolean"),
        ("train.tensorboard=1", "train.tensorboard: Input should be a valid boolean"),
        ("train.threads=true", "train.threads: True: use 'auto' or an integer >= 1"),
        ("train.threads=2.0", "train.threads: 2.0: use 'auto' or an integer >= 1"),
        ("train.threads=0", "train.threads: 0: use 'auto' or an integer >= 1"),
    ],
)
def test_values_mean_what_they_say(override, needle):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_cnn_geometry_and_classes_are_checked_at_validation():
    base = {"type": "cnn", "blocks": [{"channels": 4, "kernel": 5}]}
    assert validate({"model": base}).model.feature_shapes() == [(4, 12, 12)]
    with pytest.raises(ConfigError, match="shrink the"):
        validate({"model": {**base, "blocks": [{"channels": 4, "kernel": 29}]}})
    with pytest.raises(ConfigError, match=r"model.dense ends in 3 outputs"):
        validate({"model": {**base, "dense": [3]}})
    with pytest.raises(ConfigError, match=r"input_shape is \[3, 28, 28\]"):
        validate({"model": {**base, "input_shape": [3, 28, 28]}})


def test_yaml_1e_notation_and_ints_for_floats_still_work():
    cfg = load_config(None, ["optim.lr=1e-3", "optim.weight_decay=0", "name=lr=0.1,bs=64"])
    assert cfg.optim.lr == 1e-3 and cfg.optim.weight_decay == 0.0 and cfg.name == "lr=0.1,bs=64"


def test_duplicate_keys_in_a_file_name_the_line(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("train:\n  epochs: 1\n  batch_size: 8\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"dup.yaml \(line 4, column 3\): duplicate key 'epochs'"):
        load_config(p)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model.batch_norm=true", "model.dropout=0.2", "model.sizes=[784, 64, 32, 10]"],
        ["model.type=cnn", "model.dense=[16, 10]",
         "model.blocks=[{channels: 4, kernel: 5, batch_norm: true}, "
         "{channels: 6, kernel: 3, padding: 1, stride: 2, pool: 0, dropout: 0.1}]"],
    ],
)  # fmt: skip
def test_memory_estimate_counts_what_build_model_builds(overrides):
    from barenet.builders import build_model
    from barenet.memory import memory_estimate, model_size

    cfg = load_config(None, overrides)
    model = build_model(cfg.model, 0)
    params, buffers, _ = model_size(cfg.model)
    assert params == model.num_parameters() == memory_estimate(cfg).parameters
    assert params + buffers == sum(v.size for v in model.state_dict().values())


def test_memory_cap_refuses_with_the_estimate(monkeypatch):
    from barenet import memory

    big = ["model.sizes=[784, 10000000, 10]"]
    with pytest.raises(ConfigError) as info:
        load_config(None, big)
    msg = str(info.value)
    assert "7,950,000,010 parameters" in msg and "GiB" in msg and "BARENET_MEMORY_LIMIT" in msg
    # The cap follows BARENET_MEMORY_LIMIT; without the check the config itself is valid.
    monkeypatch.setenv("BARENET_MEMORY_LIMIT", "1T")
    assert load_config(None, big).model.sizes[1] == 10_000_000
    monkeypatch.setenv("BARENET_MEMORY_LIMIT", "100M")
    with pytest.raises(ConfigError, match=r"more than the 100.0 MiB of \$BARENET_MEMORY_LIMIT"):
        load_config(None, [])
    monkeypatch.setenv("BARENET_MEMORY_LIMIT", "lots")
    with pytest.raises(ConfigError, match="expected a size such as 8G"):
        load_config(None, [])
    monkeypatch.delenv("BARENET_MEMORY_LIMIT")
    limit, source = memory.memory_limit()
    assert 0 < limit and source
    assert validate({"model": {"sizes": [784, 10_000_000, 10]}}, check_memory=False)
    assert [memory.parse_size(t) for t in ("8G", "512M", "1000", "1.5KiB")] == [
        8 << 30, 512 << 20, 1000, 1536,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "override",
    [
        "schedule={name: multistep, milestones: [1.0e+308]}",
        "schedule={name: step, step_size: 1.0e+308}",
        "schedule={name: cyclic, cycle_epochs: 1.0e+308}",
        "schedule.warmup_epochs=1.0e+308",
    ],
)
def test_schedule_periods_are_bounded(override):
    # Before: accepted, then OverflowError (an internal error) converting epochs to steps.
    with pytest.raises(ConfigError, match="schedule") as info:
        load_config(None, [override])
    assert "\n" not in str(info.value)


def test_a_subset_too_small_to_train_on_is_a_config_error():
    # Before: "internal error: the training loader yielded no batches" after data loading.
    import numpy as np

    from barenet.runner import split_indices

    labels = np.repeat(np.arange(10), 600)
    # none; all for validation (one image per class: the classes are pooled, 0.95 of 10)
    for override in ("data.subset=1.0e-5", "data.subset=0.002"):
        cfg = load_config(None, [override, "data.val_fraction=0.95"])
        with pytest.raises(ConfigError, match="no training sample left: data.subset"):
            split_indices(cfg, labels)
    # the default val_fraction of one image per class: pooled, one of the ten to validation
    tr, va = split_indices(load_config(None, ["data.subset=0.002"]), labels)
    assert (len(tr), len(va)) == (9, 1)


@pytest.mark.parametrize(
    "text, want, needle",
    [
        ("space: {optim.lr: [0.1]}\nbase: run.yaml\n", "run", "is a search config, not a run"),
        ("variants: {a: {}}\n", "run", "is an experiment config, not a run config"),
        ("model: {sizes: [784, 10]}\n", "search", "is a run config, not a search config"),
        ("train: {epochs: 1}\n", "experiment", "is a run config, not an experiment config"),
        ("sampler: grid\nspace: {}\n", "experiment", "is a search config, not an experiment"),
    ],
)
def test_a_config_of_another_kind_names_its_command(tmp_path, text, want, needle):
    # `barenet train configs/search/x.yaml` (or search on a run config) listed every key of
    # the file as unknown, in a 600-character line; now one line names the right command.
    from barenet.experiment import load_experiment
    from barenet.search import load_search

    path = tmp_path / "x.yaml"
    path.write_text(text)
    load = {"run": load_config, "search": load_search, "experiment": load_experiment}[want]
    with pytest.raises(ConfigError) as err:
        load(path)
    message = str(err.value)
    assert needle in message and "\n" not in message and "unknown key" not in message
    kind = re.search(r" is an? (\w+) config", message).group(1)  # the file's own kind
    command = {"search": "search", "experiment": "experiment", "run": "train"}[kind]
    assert f"`barenet {command} {path}`" in message

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

"""One merge rule for every override: train ``--set``, search spaces, experiment variants and
``--set``. A mapping merges into the mapping there, recursively; anything else replaces."""

from __future__ import annotations

import pytest
import yaml

from barenet.config import ConfigError, apply_overrides, load_base, load_config, merge_into
from barenet.experiment import load_experiment
from barenet.search import resolve_search

BASE = {"data": {"augment": {"degrees": 5.0, "translate": 0.05}}, "model": {"sizes": [784, 9, 10]}}
SET = "data.augment={enabled: true}"


def test_mappings_merge_recursively_and_other_values_replace():
    data = {"a": {"b": {"c": 1, "d": 2}, "l": [1, 2]}, "x": 1}
    merge_into(data, {"a": {"b": {"c": 5}}, "a.l": [3], "a.b.e": 4, "y.z": 0})
    assert data == {"a": {"b": {"c": 5, "d": 2, "e": 4}, "l": [3]}, "x": 1, "y": {"z": 0}}
    assert apply_overrides({"a": {"b": 1}}, ["a={c: 2}"]) == {"a": {"b": 1, "c": 2}}
    with pytest.raises(ConfigError, match="'x' is not a section"):
        merge_into({"x": 1}, {"x.y": 2})
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["optim.lr"])


def test_train_search_and_experiment_agree(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(BASE))
    train = load_config(path, [SET]).data.augment

    search = resolve_search(
        {"base": "run.yaml", "study": "s", "space": {"data.augment": [{"enabled": True}]}},
        root=tmp_path,
    )
    searched = search.make_config({"data.augment": {"enabled": True}}).data.augment

    exp_file = tmp_path / "e.yaml"
    exp_file.write_text(yaml.safe_dump({"base": "run.yaml", "variants": {"v": {}}}))
    exp = load_experiment(exp_file, seeds=1, sets=[SET])
    experimented = exp.config("v", 0)["data"]["augment"]
    variant_file = tmp_path / "v.yaml"
    variant_file.write_text(
        yaml.safe_dump({"base": "run.yaml", "variants": {"v": {"data.augment": {"enabled": True}}}})
    )
    variant = load_experiment(variant_file, seeds=1).config("v", 0)["data"]["augment"]

    for aug in (train.model_dump(), searched.model_dump(), experimented, variant):
        assert aug["enabled"] is True
        assert aug["degrees"] == 5.0 and aug["translate"] == 0.05  # kept from the base file


def test_one_base_loader(tmp_path):
    (tmp_path / "b.yaml").write_text("optim: {lr: 0.3}\n")
    assert load_base("b.yaml", None, tmp_path, "x") == {"optim": {"lr": 0.3}}
    assert load_base(None, {"optim": {"lr": 0.2}}, tmp_path, "x") == {"optim": {"lr": 0.2}}
    assert load_base(None, None, tmp_path, "x") == {}
    with pytest.raises(ConfigError, match="not both"):
        load_base("b.yaml", {}, tmp_path, "x")
    with pytest.raises(ConfigError, match="give one of"):
        load_base(None, None, tmp_path, "x", required=True)
    with pytest.raises(ConfigError, match="config file not found"):
        load_base("nope.yaml", None, tmp_path, "x")
    (tmp_path / "list.yaml").write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_base("list.yaml", None, tmp_path, "x")

"""Config layering: dataclass <- plugins.toml <- --config <- CLI, with checked types."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainers import config as cfg
from trainers.api import setting
from trainers.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Cfg:
    epochs: int = setting(200, "Epochs.")
    lr: float = setting(0.1, "Learning rate.")
    M: tuple[int, ...] = setting((2, 4), "Copies per sample.")
    method: Literal["adam", "sgd"] = setting("adam", "Optimizer.")
    nesterov: bool = setting(False, "Nesterov momentum.")
    label: str = setting("x", "A label.")


@dataclass(frozen=True)
class NeedsValue:
    points: int


def test_field_specs_read_types_help_and_defaults() -> None:
    specs = {s.name: s for s in cfg.field_specs(Cfg)}
    assert (specs["M"].kind, specs["M"].sequence, specs["M"].default) == (int, True, (2, 4))
    assert specs["method"].choices == ("adam", "sgd")
    assert specs["lr"].help == "Learning rate."
    assert (specs["M"].option, specs["M"].metavar) == ("--M", "INT,...")
    assert specs["nesterov"].option == "--nesterov"
    assert cfg.field_specs(NeedsValue)[0].default is cfg.REQUIRED


def test_unsupported_field_type_is_named() -> None:
    @dataclass(frozen=True)
    class Bad:
        shape: dict[str, int]

    with pytest.raises(TypeError, match="'shape'"):
        cfg.field_specs(Bad)


def test_each_layer_overrides_only_what_it_sets() -> None:
    layers = [("plugins.toml [p]", {"epochs": 10, "lr": 0.5, "M": [8]}),
              ("over.toml", {"lr": 0.25, "method": "sgd"}),
              ("command line", {"lr": 0.125})]
    got = cfg.resolve(Cfg, layers)
    assert got == Cfg(epochs=10, lr=0.125, M=(8,), method="sgd", nesterov=False, label="x")


def test_unknown_key_names_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"over\.toml: unknown key 'epoch' \(known: epochs"):
        cfg.resolve(Cfg, [("over.toml", {"epoch": 3})])


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("epochs", "8", "an integer"), ("epochs", True, "an integer"), ("lr", "0.1", "a number"),
    ("M", 4, "a list of integers"), ("M", [4, "8"], "an integer"),
    ("method", "rmsprop", "one of 'adam', 'sgd'"), ("nesterov", 1, "a boolean"),
])
def test_bad_types_name_file_key_and_expectation(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        cfg.resolve(Cfg, [("f.toml [p]", {key: value})])
    assert f"f.toml [p]: key {key!r}: expected {expected}" in str(err.value)


def test_int_widens_to_float_and_list_becomes_tuple() -> None:
    got = cfg.resolve(Cfg, [("f", {"lr": 1, "M": [1, 2]})])
    assert (got.lr, type(got.lr), got.M) == (1.0, float, (1, 2))


def test_missing_required_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no value for points"):
        cfg.resolve(NeedsValue, [])
    assert cfg.resolve(NeedsValue, [("f", {"points": 5})]).points == 5


def test_parse_option_reads_cli_text() -> None:
    specs = {s.name: s for s in cfg.field_specs(Cfg)}
    assert cfg.parse_option(specs["M"], "2, 4,8") == (2, 4, 8)
    assert cfg.parse_option(specs["lr"], "1e-3") == 0.001
    with pytest.raises(ConfigError, match="option --epochs: expected an integer, got 'ten'"):
        cfg.parse_option(specs["epochs"], "ten")
    with pytest.raises(ConfigError, match="one of 'adam', 'sgd'"):
        cfg.parse_option(specs["method"], "sgdw")


def test_overlay_reads_its_plugin_table_or_plain_keys() -> None:
    assert cfg.overlay_table({"p": {"lr": 1, "enabled": True}, "q": {"x": 1}}, "p", "f") == \
        {"lr": 1}
    assert cfg.overlay_table({"lr": 1, "q": {"x": 1}}, "p", "f") == {"lr": 1}


def test_enabled_defaults_true_and_must_be_boolean() -> None:
    assert cfg.is_enabled({}, "p", "f")
    assert not cfg.is_enabled({"p": {"enabled": False}}, "p", "f")
    with pytest.raises(ConfigError, match="f \\[p\\]: key 'enabled'"):
        cfg.is_enabled({"p": {"enabled": "no"}}, "p", "f")


def test_read_toml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        cfg.read_toml(bad)
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file"):
        cfg.read_toml(tmp_path / "nope.toml")


def test_defaults_path_prefers_the_packaged_copy(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cfg.DEFAULTS_ENV, raising=False)
    package = tmp_path / "site" / "trainers"
    package.mkdir(parents=True)
    assert cfg.defaults_path(package) == tmp_path / "site" / "plugins.toml"  # source checkout
    (package / "plugins.toml").write_text("")
    assert cfg.defaults_path(package) == package / "plugins.toml"  # installed wheel
    assert cfg.defaults_path() == REPO / "plugins.toml"
    monkeypatch.setenv(cfg.DEFAULTS_ENV, str(tmp_path / "mine.toml"))
    assert cfg.defaults_path() == tmp_path / "mine.toml"


def test_wheel_ships_the_repository_plugins_toml() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["force-include"]["plugins.toml"] == "trainers/plugins.toml"
    assert "hw3.trainers" in project["project"]["entry-points"]


def test_repository_plugins_toml_has_a_table_with_enabled_per_plugin() -> None:
    doc = cfg.read_toml(REPO / "plugins.toml")
    assert {"optimizers", "scaling", "cutout", "depth-width"} <= set(doc)
    for name, table in doc.items():
        assert isinstance(table, dict), name
        assert isinstance(cfg.is_enabled(doc, name, "plugins.toml"), bool)
    # The protocol is the config dataclasses' defaults, which plugins.toml may override.
    from trainers.plugins.cutout.config import Config as CutoutConfig
    from trainers.plugins.optimizers.config import Config as OptimizersConfig

    defaults = cfg.Defaults.load(REPO / "plugins.toml")
    cutout = cfg.config_values(cfg.resolve(CutoutConfig, [defaults.layer("cutout")]))
    optimizers = cfg.config_values(cfg.resolve(OptimizersConfig,
                                               [defaults.layer("optimizers")]))
    assert cutout["M"] == [1, 2, 4, 8, 16, 32]  # M = 1: the baseline (issue 5)
    assert (optimizers["epochs"], optimizers["batch_size"]) == (200, 128)


def test_config_values_round_trip_through_written_toml() -> None:
    config = Cfg(epochs=3, M=(1, 2, 3), label='quote " and \\ and ünï')
    text = cfg.to_toml({"hw3": {"seed": 1}, "my plugin": cfg.config_values(config)})
    back = tomllib.loads(text)
    assert cfg.resolve(Cfg, [("config.toml", back["my plugin"])]) == config
    assert back["hw3"] == {"seed": 1}


SCALAR = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.text(),
                   st.floats(allow_nan=True, allow_infinity=True))
VALUE = st.one_of(SCALAR, st.lists(SCALAR, max_size=4))


@given(st.dictionaries(st.text(min_size=1), st.dictionaries(st.text(min_size=1), VALUE),
                       max_size=3))
def test_to_toml_is_read_back_exactly(tables: dict[str, dict[str, object]]) -> None:
    back = tomllib.loads(cfg.to_toml(tables))
    assert _normal(back) == _normal(tables)


def _normal(value: object) -> object:
    """NaN != NaN; compare it as a marker."""
    if isinstance(value, float) and math.isnan(value):
        return "<nan>"
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value

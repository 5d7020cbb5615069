"""Tests of the generator configuration: presets, TOML files, overrides and validation."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from synthetic_data import generate
from synthetic_data.config import (
    PRESETS,
    ConfigError,
    GeneratorConfig,
    make_config,
    parse_overrides,
    validate_config,
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ presets
def test_presets_exist_and_grow_in_size() -> None:
    assert {"tiny", "small", "medium", "large"} <= set(PRESETS)
    sizes = [make_config(p) for p in ("tiny", "small", "medium", "large")]
    n_users = [c.n_users for c in sizes]
    n_products = [c.n_products for c in sizes]
    assert n_users == sorted(n_users) and len(set(n_users)) == 4
    assert n_products == sorted(n_products)


def test_large_preset_is_weibo_scale() -> None:
    large = make_config("large")
    assert large.n_users >= 1_000_000
    assert large.n_products >= 200_000


def test_small_is_the_default_preset_and_the_dataclass_defaults() -> None:
    assert make_config() == make_config("small") == GeneratorConfig()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_validates(preset: str) -> None:
    config = make_config(preset)
    assert validate_config(config) is config
    for key, value in PRESETS[preset].items():
        assert getattr(config, key) == value


def test_seed_and_lang_arguments_are_applied() -> None:
    config = make_config("tiny", seed=7, lang="zh")
    assert (config.seed, config.lang) == (7, "zh")
    assert config.n_users == PRESETS["tiny"]["n_users"]


# --------------------------------------------------------------- TOML files
def test_toml_file_with_top_level_keys(tmp_path: Path) -> None:
    file = _write(tmp_path / "c.toml", 'n_users = 500\nreciprocity = 0.1\nlang = "zh"\n')
    config = make_config("tiny", file=file)
    assert (config.n_users, config.reciprocity, config.lang) == (500, 0.1, "zh")
    # Keys the file leaves out keep the preset's values.
    assert config.n_products == PRESETS["tiny"]["n_products"]


def test_toml_file_with_a_generator_table(tmp_path: Path) -> None:
    file = _write(tmp_path / "c.toml", "[generator]\nn_users = 400\nn_days = 5\n")
    config = make_config("tiny", file=file)
    assert (config.n_users, config.n_days) == (400, 5)


def test_overrides_beat_the_file_and_arguments_beat_overrides(tmp_path: Path) -> None:
    file = _write(tmp_path / "c.toml", 'n_users = 400\nseed = 3\nlang = "zh"\n')
    config = make_config(
        "tiny", file=file, overrides={"n_users": 300, "seed": 4, "lang": "zh"}, seed=5, lang="en"
    )
    assert (config.n_users, config.seed, config.lang) == (300, 5, "en")


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        make_config("tiny", file=missing)


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    file = _write(tmp_path / "bad.toml", "n_users = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        make_config("tiny", file=file)


def test_unknown_key_in_a_file_is_a_config_error(tmp_path: Path) -> None:
    file = _write(tmp_path / "c.toml", "[generator]\nn_user = 400\n")
    with pytest.raises(ConfigError, match="unknown configuration key 'n_user'"):
        make_config("tiny", file=file)


# ---------------------------------------------------------------- overrides
@pytest.mark.parametrize(
    ("pair", "key", "expected"),
    [
        ("n_users=5000", "n_users", 5000),
        ("n_users = 5_000", "n_users", 5000),
        ("reciprocity=0.1", "reciprocity", 0.1),
        ("kol_share=1e-3", "kol_share", 0.001),
        ("lang=zh", "lang", "zh"),
        ('lang="zh"', "lang", "zh"),
        ("name=hello world", "name", "hello world"),
        ("flag=true", "flag", True),
        ("expr=a=b", "expr", "a=b"),
    ],
)
def test_parse_overrides_reads_toml_literals_and_bare_words(
    pair: str, key: str, expected: object
) -> None:
    parsed = parse_overrides([pair])
    assert parsed == {key: expected}
    assert type(parsed[key]) is type(expected)


def test_parse_overrides_keeps_the_last_of_repeated_keys() -> None:
    assert parse_overrides(["n_users=1", "seed=2", "n_users=3"]) == {"n_users": 3, "seed": 2}


def test_parse_overrides_rejects_a_pair_without_equals() -> None:
    with pytest.raises(ConfigError, match="'n_users'.*expected key=value"):
        parse_overrides(["n_users"])


def test_overrides_of_every_type_reach_the_config() -> None:
    overrides = parse_overrides(["n_users=300", "reciprocity=0.2", "lang=zh", "seed=9"])
    config = make_config("tiny", overrides=overrides)
    assert (config.n_users, config.reciprocity, config.lang, config.seed) == (300, 0.2, "zh", 9)
    assert isinstance(config.reciprocity, float) and isinstance(config.n_users, int)


def test_integer_valued_floats_are_accepted_for_int_knobs() -> None:
    config = make_config("tiny", overrides={"n_users": 300.0, "mean_followees": 20})
    assert config.n_users == 300 and type(config.n_users) is int
    assert config.mean_followees == 20.0 and type(config.mean_followees) is float


def test_start_date_override_in_its_documented_format() -> None:
    # Unquoted, 2026-04-01 is a TOML date literal; it must still mean the date string.
    config = make_config("tiny", overrides=parse_overrides(["start_date=2026-04-01"]))
    assert config.start_date == "2026-04-01"


def test_start_date_as_a_toml_date_in_a_file(tmp_path: Path) -> None:
    file = _write(tmp_path / "c.toml", "start_date = 2026-04-01\n")
    assert make_config("tiny", file=file).start_date == "2026-04-01"


# --------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"n_users": -5}, ("n_users", "-5")),
        ({"n_products": 0}, ("n_products", "0", "> 0")),
        ({"reciprocity": 1.5}, ("reciprocity", "1.5", "[0, 1]")),
        ({"silent_share": -0.1}, ("silent_share", "-0.1", "[0, 1]")),
        ({"kol_boost": -1.0}, ("kol_boost", "-1.0", ">= 0")),
        ({"seed": -1}, ("seed", "-1", ">= 0")),
        ({"in_exponent": 1.5}, ("in_exponent", "1.5", "(1.5, 5]")),
        ({"out_exponent": 6}, ("out_exponent", "6", "(1.5, 5]")),
        ({"lang": "fr"}, ("lang", "'fr'", "en, zh")),
        ({"lang": 1}, ("lang", "1", "string")),
        ({"start_date": "2026-13-01"}, ("start_date", "'2026-13-01'", "YYYY-MM-DD")),
        ({"start_date": "01/03/2026"}, ("start_date", "'01/03/2026'", "YYYY-MM-DD")),
        ({"n_users": "abc"}, ("n_users", "'abc'", "integer")),
        ({"n_users": 1.5}, ("n_users", "1.5", "integer")),
        ({"n_users": True}, ("n_users", "True", "integer")),
        ({"reciprocity": "high"}, ("reciprocity", "'high'", "number")),
        ({"reciprocity": False}, ("reciprocity", "False", "number")),
        ({"n_users": 10, "mean_followees": 5.0}, ("n_users", "10", ">= 20")),
        ({"n_users": 50, "mean_followees": 50.0}, ("mean_followees", "50.0", "n_users (50)")),
        ({"max_followees": 10}, ("max_followees", "10", "mean_followees (25.0)")),
        ({"n_user": 500}, ("n_user",)),
    ],
)
def test_bad_values_raise_a_config_error_naming_key_and_value(
    overrides: dict[str, object], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config("tiny", overrides=overrides)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message


def test_unknown_preset_names_it_and_lists_the_presets() -> None:
    with pytest.raises(ConfigError, match=r"unknown preset 'huge'; presets are tiny, small"):
        make_config("huge")


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_generate_validates_a_hand_built_config() -> None:
    with pytest.raises(ConfigError, match="n_users == -1"):
        generate(dataclasses.replace(make_config("tiny"), n_users=-1))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("views_per_user_day", math.inf),
        ("friend_reach", math.inf),
        ("kol_boost", math.nan),
        ("reciprocity", math.nan),
        ("mean_followees", -math.inf),
    ],
)
def test_non_finite_values_are_rejected(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"^{key} == -?(inf|nan), must be"):
        make_config("tiny", overrides={key: value})


@pytest.mark.parametrize(("key", "value"), [("reciprocity", math.nan), ("n_users", -1)])
def test_validate_config_checks_a_config_built_by_hand(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=key):
        validate_config(dataclasses.replace(make_config("tiny"), **{key: value}))

"""Generator configuration: every knob, the presets, TOML files and ``key=value`` overrides."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value, key or preset is invalid; the message names it and the rule."""


@dataclass(frozen=True)
class GeneratorConfig:
    """All knobs of the synthetic social-commerce generator.

    See ``docs/generator.md`` for what each knob does. Probabilities are in [0, 1], sizes are
    positive. Defaults are those of the ``small`` preset.
    """

    # sizes and time
    n_users: int = 10_000
    n_products: int = 8_000
    n_days: int = 60
    start_date: str = "2026-03-01"
    signup_years: float = 6.0
    lang: str = "en"
    seed: int = 0

    # users
    female_share: float = 0.52
    kol_share: float = 0.004
    share_purchases_rate: float = 0.85
    mobile_share: float = 0.80
    interests_per_user: float = 5.0
    interest_concentration: float = 0.7

    # follow graph
    mean_followees: float = 60.0
    max_followees: int = 2_000
    out_exponent: float = 2.35
    in_exponent: float = 2.0
    kol_boost: float = 60.0
    reciprocity: float = 0.09
    homophily: float = 0.5
    triadic_closure: float = 0.5

    # groups
    groups_per_1000_users: float = 10.0
    memberships_per_user: float = 0.8

    # catalogue
    products_per_shop: float = 25.0
    popularity_sigma: float = 1.3

    # posts
    silent_share: float = 0.57
    posts_per_poster: float = 12.0
    poster_concentration: float = 2.5
    repost_share: float = 0.2
    kol_guide_share: float = 0.6
    interest_post_share: float = 0.35
    hashtag_rate: float = 0.1
    mention_rate: float = 0.12
    interest_link_rate: float = 0.2
    life_event_rate: float = 0.25
    life_event_days: int = 14

    # behaviour
    views_per_user_day: float = 1.5
    popularity_view_share: float = 0.2
    purchase_rate: float = 0.022
    interest_strength: float = 3.0
    influence_strength: float = 1.5
    friend_reach: float = 4.0
    kol_exposure: float = 0.03
    kol_influence: float = 0.6
    showoff_rate: float = 0.2
    showoff_reach: float = 15.0
    price_sensitivity: float = 1.0
    life_event_focus: float = 0.5

    @property
    def n_kols(self) -> int:
        return max(1, round(self.n_users * self.kol_share))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "n_users": 1_000,
        "n_products": 1_500,
        "n_days": 30,
        "mean_followees": 25.0,
        "max_followees": 500,
        "kol_share": 0.01,
        "views_per_user_day": 2.0,
        "groups_per_1000_users": 20.0,
    },
    "small": {},
    "medium": {
        "n_users": 100_000,
        "n_products": 50_000,
        "n_days": 45,
        "mean_followees": 80.0,
        "kol_share": 0.002,
        "views_per_user_day": 1.2,
    },
    "large": {
        "n_users": 1_000_000,
        "n_products": 200_000,
        "n_days": 30,
        "mean_followees": 53.0,
        "kol_share": 0.001,
        "posts_per_poster": 14.7,
        "views_per_user_day": 1.34,
        "groups_per_1000_users": 2.0,
        "memberships_per_user": 0.3,
    },
}

PROBABILITIES = {
    "female_share",
    "kol_share",
    "share_purchases_rate",
    "mobile_share",
    "interest_concentration",
    "reciprocity",
    "homophily",
    "triadic_closure",
    "silent_share",
    "repost_share",
    "kol_guide_share",
    "interest_post_share",
    "hashtag_rate",
    "mention_rate",
    "interest_link_rate",
    "life_event_rate",
    "popularity_view_share",
    "purchase_rate",
    "kol_exposure",
    "showoff_rate",
    "life_event_focus",
}
POSITIVE = {
    "n_users",
    "n_products",
    "n_days",
    "signup_years",
    "interests_per_user",
    "mean_followees",
    "max_followees",
    "products_per_shop",
    "posts_per_poster",
    "views_per_user_day",
    "life_event_days",
}
NON_NEGATIVE = {
    "kol_boost",
    "groups_per_1000_users",
    "memberships_per_user",
    "popularity_sigma",
    "poster_concentration",
    "interest_strength",
    "influence_strength",
    "kol_influence",
    "friend_reach",
    "showoff_reach",
    "price_sensitivity",
    "seed",
}
EXPONENTS = {"out_exponent", "in_exponent"}
LANGS = ("en", "zh")


def make_config(
    preset: str = "small",
    *,
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    lang: str | None = None,
) -> GeneratorConfig:
    """Build a validated configuration: preset, then a TOML file, then overrides.

    Raises
    ------
    ConfigError
        Unknown preset or key, a value of the wrong type or outside its range.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; presets are {', '.join(PRESETS)}")
    values: dict[str, Any] = dict(PRESETS[preset])
    if file is not None:
        values.update(_read_toml(Path(file)))
    values.update(overrides or {})
    if seed is not None:
        values["seed"] = seed
    if lang is not None:
        values["lang"] = lang
    return validate_config(_coerce_all(values))


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (values as TOML literals, bare words as strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--set {pair!r}: expected key=value")
        key, raw = (s.strip() for s in pair.split("=", 1))
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw
    return out


def validate_config(config: GeneratorConfig) -> GeneratorConfig:
    """Check every value's range; return the config unchanged or raise :class:`ConfigError`."""
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name} == {value}, must be a finite number.")
    if config.n_users < 20:
        raise ConfigError(f"n_users == {config.n_users}, must be >= 20.")
    for name in PROBABILITIES:
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} == {value}, must be a probability in [0, 1].")
    for name in POSITIVE:
        value = getattr(config, name)
        if not value > 0:
            raise ConfigError(f"{name} == {value}, must be > 0.")
    for name in NON_NEGATIVE:
        value = getattr(config, name)
        if value < 0:
            raise ConfigError(f"{name} == {value}, must be >= 0.")
    for name in EXPONENTS:
        value = getattr(config, name)
        if not 1.5 < value <= 5.0:
            raise ConfigError(f"{name} == {value}, must be in (1.5, 5].")
    if config.lang not in LANGS:
        raise ConfigError(f"lang == {config.lang!r}, must be one of {', '.join(LANGS)}.")
    if config.mean_followees >= config.n_users:
        raise ConfigError(
            f"mean_followees == {config.mean_followees}, must be < n_users ({config.n_users})."
        )
    if config.max_followees < config.mean_followees:
        raise ConfigError(
            f"max_followees == {config.max_followees}, must be >= mean_followees "
            f"({config.mean_followees})."
        )
    try:
        _start_timestamp(config.start_date)
    except ValueError as exc:
        raise ConfigError(f"start_date == {config.start_date!r}, must be YYYY-MM-DD.") from exc
    return config


def _start_timestamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    # Accept the knobs at top level or under a [generator] table.
    return dict(data.get("generator", data))


def _coerce_all(values: dict[str, Any]) -> GeneratorConfig:
    known = {f.name: f for f in fields(GeneratorConfig)}
    coerced = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown configuration key {key!r}; see docs/generator.md")
        coerced[key] = _coerce(key, value, known[key].type)
    return GeneratorConfig(**coerced)


def _coerce(key: str, value: Any, type_name: Any) -> Any:
    type_name = type_name if isinstance(type_name, str) else type_name.__name__
    if type_name == "int":
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            raise ConfigError(f"{key} == {value!r}, must be an integer.")
        return int(value)
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} == {value!r}, must be a number.")
        return float(value)
    if type_name == "str":
        if isinstance(value, dt.date):  # a TOML date literal such as 2026-04-01
            return value.isoformat()
        if not isinstance(value, str):
            raise ConfigError(f"{key} == {value!r}, must be a string.")
        return value
    raise ConfigError(f"{key}: unsupported type {type_name}")  # pragma: no cover

"""Synthetic Weibo-like social graphs, posts and Taobao-like shopping, with ground truth."""

__version__ = "0.1.0"

from synthetic_data.config import ConfigError, GeneratorConfig, make_config  # noqa: E402
from synthetic_data.generate import generate  # noqa: E402

__all__ = ["ConfigError", "GeneratorConfig", "generate", "make_config"]

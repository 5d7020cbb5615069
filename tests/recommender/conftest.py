"""Shared fixtures of the recommender tests."""

from tests.recommender.contract import tiny_dataset  # noqa: F401  (a session fixture)

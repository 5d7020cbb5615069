"""JSON-ready reasons and request ids: the small helpers every answer goes through."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from service.middleware import RequestIds
from service.model_holder import plain


def test_plain_converts_numpy_timestamps_and_non_finite_floats() -> None:
    evidence = {
        "user_ids": [np.int64(3), 4],
        "share": np.float32(0.5),
        "missing": np.float64("nan"),
        "scores": np.array([1.5, np.inf]),
        "pair": (1, "a"),
        "when": pd.Timestamp("2026-01-02", tz="UTC"),
        "at": datetime(2026, 1, 2, tzinfo=UTC),
        7: [float("-inf"), 2.5, True, None],
    }
    out = plain(evidence)
    assert out == {
        "user_ids": [3, 4],
        "share": 0.5,
        "missing": None,
        "scores": [1.5, None],
        "pair": [1, "a"],
        "when": "2026-01-02T00:00:00+00:00",
        "at": "2026-01-02T00:00:00+00:00",
        "7": [None, 2.5, True, None],
    }
    assert type(out["user_ids"][0]) is int and type(out["share"]) is float
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in out["7"])


def test_request_ids_are_32_hex_characters_and_unique() -> None:
    ids = RequestIds()
    seen = {ids.next() for _ in range(1000)}
    assert len(seen) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in seen)
    assert len({i[:16] for i in seen}) == 1  # one process, one prefix
    assert RequestIds().next()[:16] != next(iter(seen))[:16]

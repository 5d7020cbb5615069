"""Simulated time: the period's start, its days, and conversion to UTC timestamps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class Timeline:
    """The simulated period: ``n_days`` days from ``start_us`` (microseconds since epoch)."""

    start_us: int
    n_days: int
    signup_start_us: int

    @classmethod
    def from_config(cls, start_date: str, n_days: int, signup_years: float) -> Timeline:
        start = dt.datetime.strptime(start_date, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        start_us = int(start.timestamp()) * 1_000_000
        signup_start = start_us - int(signup_years * 365 * DAY_US)
        return cls(start_us=start_us, n_days=n_days, signup_start_us=signup_start)

    @property
    def end_us(self) -> int:
        return self.start_us + self.n_days * DAY_US - 1

    def day_start(self, day: int | np.ndarray) -> int | np.ndarray:
        return self.start_us + np.asarray(day, dtype=np.int64) * DAY_US

    def to_timestamps(self, us: np.ndarray) -> pd.Series:
        """Microseconds since the epoch as a ``datetime64[us, UTC]`` series."""
        values = np.asarray(us, dtype=np.int64).view("datetime64[us]")
        return pd.Series(pd.DatetimeIndex(values, copy=False).tz_localize("UTC"), copy=False)

    def span(self) -> dict[str, str]:
        """The manifest's ``time_span``: from the earliest signup to the period's end."""
        to_iso = lambda us: pd.Timestamp(us, unit="us", tz="UTC").isoformat()  # noqa: E731
        return {"start": to_iso(self.signup_start_us), "end": to_iso(self.end_us)}

"""Popularity: trending products with time decay, overall and per demographic segment.

The fallback for people with no history (cold start): their demographic segment's trend.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from recommender.base import Reason, Recommender
from recommender.data import TrainingData

AGE_LABELS = {
    "<18": "under 18",
    "18-24": "18–24",
    "25-34": "25–34",
    "35-44": "35–44",
    "45+": "45+",
}
GENDER_LABELS = {"female": "women", "male": "men"}


class PopularitySource(Recommender):
    """Time-decayed popularity, blended with the person's gender × age-band segment.

    Parameters
    ----------
    half_life_days : float, default=7.0
        An event's weight halves every this many days before the cut-off.
    segment_weight : float, default=0.5
        Share of the score from the person's segment (the rest is overall popularity).
    """

    source_name = "popularity"

    def __init__(self, *, half_life_days: float = 7.0, segment_weight: float = 0.5) -> None:
        self.half_life_days = half_life_days
        self.segment_weight = segment_weight

    def _fit(self, data: TrainingData) -> None:
        if not self.half_life_days > 0:
            raise ValueError(f"half_life_days == {self.half_life_days}, must be > 0.")
        if not 0 <= self.segment_weight <= 1:
            raise ValueError(f"segment_weight == {self.segment_weight}, must be in [0, 1].")
        inter = data.interactions
        age_days = (data.now - inter["ts"]).dt.total_seconds().to_numpy() / 86_400
        decay = 0.5 ** (np.maximum(age_days, 0) / self.half_life_days)
        weight = inter["event"].astype(str).map(data.event_weights).to_numpy(float) * decay
        items = inter["i"].to_numpy()
        overall = np.bincount(items, weights=weight, minlength=data.n_items)
        users = data.dataset.users
        segment = (users["gender"].astype(str) + "|" + users["age_band"].astype(str)).to_numpy()
        self.segments_, self.user_segment_ = np.unique(segment, return_inverse=True)
        seg_of_event = self.user_segment_[inter["u"].to_numpy()]
        per_segment = np.zeros((len(self.segments_), data.n_items))
        np.add.at(per_segment, (seg_of_event, items), weight)
        self.overall_ = _normalise(overall)
        self.per_segment_ = np.vstack([_normalise(row) for row in per_segment])
        self.counts_ = np.bincount(items, minlength=data.n_items)

    def _score(self, users: np.ndarray) -> np.ndarray:
        seg = self.per_segment_[self.user_segment_[users]]
        w = self.segment_weight
        return ((1 - w) * self.overall_[None, :] + w * seg).astype(np.float32)

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        seg = self.user_segment_[np.asarray(users, dtype=np.int64)]
        safe = np.maximum(items, 0)
        w = self.segment_weight
        scores = (1 - w) * self.overall_[safe] + w * self.per_segment_[seg[:, None], safe]
        return np.where(items >= 0, scores.astype(np.float32), -np.inf).astype(np.float32)

    def candidates(self, users, n, *, exclude=None, blocked=None):
        """Everyone in a segment shares one ranking: walk it (sorted once per segment),
        skipping the person's exclusions and blocked items."""
        check_is_fitted(self, "per_segment_")
        users = np.asarray(users, dtype=np.int64)
        items = np.full((len(users), n), -1, dtype=np.int64)
        scores = np.full((len(users), n), -np.inf, dtype=np.float32)
        ex = None if exclude is None else sp.csr_array(exclude)
        for seg in np.unique(self.user_segment_[users]):
            order, values = self._segment_ranking(int(seg))
            if blocked is not None:
                keep = ~np.asarray(blocked, bool)[order]
                order, values = order[keep], values[keep]
            for row in np.flatnonzero(self.user_segment_[users] == seg):
                banned = ex.indices[ex.indptr[row] : ex.indptr[row + 1]] if ex is not None else []
                head = order[: n + len(banned)]
                ok = ~np.isin(head, banned)
                chosen = head[ok][:n]
                items[row, : len(chosen)] = chosen
                scores[row, : len(chosen)] = values[: n + len(banned)][ok][:n]
        return items, scores

    def _segment_top(self, seg: int) -> set[int]:
        """The segment's 200 trendiest products (for reasons), computed once per segment."""
        cache = getattr(self, "_tops", None)
        if cache is None or cache[0] is not self.per_segment_:
            cache = (self.per_segment_, {})
            self._tops = cache
        if seg not in cache[1]:
            cache[1][seg] = set(np.argsort(-self.per_segment_[seg])[:200].tolist())
        return cache[1][seg]

    def _segment_ranking(self, seg: int) -> tuple[np.ndarray, np.ndarray]:
        """Items of one segment by the order of :func:`~recommender.base.top_n` (score as
        ``_score`` gives it, then index), and their scores; cached per fitted state."""
        cache = getattr(self, "_rankings", None)
        if cache is None or cache[0] is not self.per_segment_:
            cache = (self.per_segment_, {})
            self._rankings = cache
        if seg not in cache[1]:
            w = self.segment_weight
            row = ((1 - w) * self.overall_ + w * self.per_segment_[seg]).astype(np.float32)
            order = np.lexsort((np.arange(len(row)), -row))
            cache[1][seg] = (order, row[order])
        return cache[1][seg]

    def _explain(self, user: int, items: np.ndarray) -> list[list[Reason]]:
        gender, age = self.segments_[self.user_segment_[user]].split("|")
        who = _segment_label(gender, age)
        top = self._segment_top(int(self.user_segment_[user]))
        reasons = []
        for item in items:
            if who and int(item) in top:
                reasons.append(
                    [
                        Reason(
                            "trending_in_segment",
                            f"Trending among {who}",
                            {"segment": {"gender": gender, "age_band": age}},
                            self.source_name,
                        )
                    ]
                )
            else:
                reasons.append([Reason("trending", "Popular right now", {}, self.source_name)])
        return reasons


def _segment_label(gender: str, age: str) -> str:
    g = GENDER_LABELS.get(gender)
    a = AGE_LABELS.get(age)
    if g and a:
        return f"{g} {a}"
    return g or (f"people aged {a}" if a else "")


def _normalise(row: np.ndarray) -> np.ndarray:
    top = row.max() if len(row) else 0.0
    return row / top if top > 0 else row

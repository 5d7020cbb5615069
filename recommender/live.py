"""What the hybrid offers beyond one person's list: live updates, similar products, share
targets and group recommendations. Mixed into :class:`recommender.hybrid.HybridRecommender`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from recommender.base import Reason

GROUP_STRATEGIES = ("average", "least_misery")


class LiveUpdatesMixin:
    """New posts, events and follows reach the next request without refitting."""

    def _source(self, name: str):
        for n, s in zip(self.source_names_, self.sources_, strict=True):
            if n == name:
                return s
        return None

    def add_post(
        self,
        user_id: int,
        text: str,
        hashtags=(),
        *,
        post_id: int | None = None,
        product_id: int | None = None,
        mentions=(),
        repost_of: int | None = None,
        created_ts=None,
    ) -> None:
        """A new post: updates the author's content profile, and a product link or
        @-mentions reach their followers' social scores."""
        check_is_fitted(self, "sources_")
        self.users_.lookup(user_id)
        content = self._source("content")
        if content is not None:
            content.add_post(user_id, text, hashtags, created_ts, post_id=post_id)
        social = self._source("social")
        if social is not None and post_id is not None:
            social.add_post(
                post_id,
                user_id,
                product_id=product_id,
                mentions=tuple(mentions),
                repost_of=repost_of,
                ts=created_ts,
            )

    def add_event(
        self, user_id: int, product_id: int, event: str, ts=None, *, refresh: bool = True
    ) -> None:
        """A new view/click/favorite/cart/purchase: followers' social scores, the person's
        collaborative factors (re-solved) and, for a purchase, the exclusion list.

        ``refresh=False`` defers the re-solve of the person's collaborative factors to
        :meth:`refresh_users`: a batch of events costs one batched solve, and until then
        their factors are those before the batch."""
        check_is_fitted(self, "sources_")
        data = self.data_
        if event not in data.event_weights:
            raise ValueError(f"event == {event!r}, must be one of {sorted(data.event_weights)}.")
        u = int(self.users_.lookup(user_id)[0])
        i = int(self.items_.lookup(product_id)[0])
        social = self._source("social")
        if social is not None:
            social.add_event(user_id, product_id, event, ts)
        collaborative = self._source("collaborative")
        if collaborative is not None:
            collaborative.add_events(
                user_id, [product_id], [data.event_weights[event]], refresh=refresh
            )
        if event == "purchase":
            data.add_live("purchased", u, [i], [1.0])

    def refresh_users(self, user_ids) -> None:
        """Re-solve the collaborative factors of people whose events were added with
        ``refresh=False`` (one batched solve)."""
        check_is_fitted(self, "sources_")
        collaborative = self._source("collaborative")
        if collaborative is not None:
            collaborative.refresh_users(user_ids)

    def add_follow(self, follower_id: int, followee_id: int) -> None:
        """A new follow: the followee's activity reaches the follower from now on."""
        self._change_follow("add_follow", follower_id, followee_id)

    def remove_follow(self, follower_id: int, followee_id: int) -> None:
        """An unfollow."""
        self._change_follow("remove_follow", follower_id, followee_id)

    def _change_follow(self, method: str, follower_id: int, followee_id: int) -> None:
        check_is_fitted(self, "sources_")
        social = self._source("social")
        if social is not None:
            getattr(social, method)(follower_id, followee_id)
        else:  # nothing to update, but unknown ids are still an error
            self.users_.lookup([follower_id, followee_id])

    # ------------------------------------------------------------ products
    def similar_products(self, product_id: int, k: int = 10) -> pd.DataFrame:
        """Products like this one: text similarity (content) blended with co-engagement
        (collaborative item factors). Columns product_id, score, reasons."""
        check_is_fitted(self, "sources_")
        item = int(self.items_.lookup(product_id)[0])
        n_items = self.data_.n_items
        score = np.zeros(n_items, dtype=np.float32)
        why: dict[int, list[Reason]] = {}
        content = self._source("content")
        if content is not None:
            items, sims = content.similar_items(item, n=max(4 * k, 50))
            score[items] += 0.5 * sims.astype(np.float32)
            for j in items:
                why.setdefault(int(j), []).append(
                    Reason("similar_text", "Similar title and description", {}, "content")
                )
        collaborative = self._source("collaborative")
        if collaborative is not None:
            sims = collaborative.item_unit_ @ collaborative.item_unit_[item]
            sims[item] = -np.inf
            top = np.argpartition(-sims, min(4 * k, n_items - 1))[: 4 * k]
            score[top] += 0.5 * np.maximum(sims[top], 0).astype(np.float32)
            for j in top:
                why.setdefault(int(j), []).append(
                    Reason(
                        "bought_together",
                        "People who engage with this product also engage with this one",
                        {},
                        "collaborative",
                    )
                )
        score[item] = -np.inf
        order = np.argsort(-score, kind="stable")[:k]
        order = order[score[order] > 0]
        return pd.DataFrame(
            {
                "product_id": self.items_.raw(order).astype(np.int64),
                "score": score[order].astype(np.float64),
                "reasons": [[r.to_dict() for r in why.get(int(j), [])] for j in order],
            }
        )

    def share_targets(self, user_id: int, product_id: int, k: int = 10) -> pd.DataFrame:
        """Which people this person follows would most want the product (the "@ a friend"
        feature). Columns user_id, handle, score, reasons."""
        check_is_fitted(self, "sources_")
        social = self._source("social")
        if social is None:
            raise ValueError("share targets need a social source")
        return social.share_targets(user_id, product_id, n=k)

    # --------------------------------------------------------------- groups
    def recommend_group(
        self, user_ids, k: int = 10, *, strategy: str = "average", candidates: int = 50
    ) -> pd.DataFrame:
        """Products for a group of people: each member's ranked candidates, aggregated.

        ``average`` ranks by the mean of the members' scores; ``least_misery`` by the
        minimum (no one is left out). Columns rank, product_id, score, member_scores,
        reasons."""
        check_is_fitted(self, "sources_")
        if strategy not in GROUP_STRATEGIES:
            raise ValueError(f"strategy == {strategy!r}, must be one of {list(GROUP_STRATEGIES)}.")
        users = self.users_.lookup(np.unique(np.atleast_1d(user_ids)))
        if len(users) == 0:
            raise ValueError("a group needs at least one member")
        exclude = self.data_.rows("purchased", users)
        items, scores = self.candidates(users, candidates, exclude=exclude)
        pool = np.unique(items[items >= 0])
        matrix = np.zeros((len(users), len(pool)), dtype=np.float64)
        position = {int(p): j for j, p in enumerate(pool)}
        for row in range(len(users)):
            for item, score in zip(items[row], scores[row], strict=True):
                if item >= 0:
                    matrix[row, position[int(item)]] = score
        agg = matrix.mean(axis=0) if strategy == "average" else matrix.min(axis=0)
        order = np.argsort(-agg, kind="stable")[:k]
        order = order[agg[order] > 0] if strategy == "least_misery" else order
        handles = self.data_.dataset.users["handle"].astype(str).to_numpy()
        rows = []
        for rank, j in enumerate(order, start=1):
            liked = [int(u) for u, s in zip(users, matrix[:, j], strict=True) if s > 0]
            names = ", ".join(f"@{handles[u]}" for u in liked[:3])
            rows.append(
                {
                    "rank": rank,
                    "product_id": int(self.items_.raw(pool[j])),
                    "score": float(agg[j]),
                    "member_scores": {
                        int(self.users_.raw(u)): float(s)
                        for u, s in zip(users, matrix[:, j], strict=True)
                    },
                    "reasons": [
                        Reason(
                            "group_fit",
                            f"Fits {len(liked)} of {len(users)} members: {names}",
                            {"user_ids": [int(self.users_.raw(u)) for u in liked]},
                            "hybrid",
                        ).to_dict()
                    ],
                }
            )
        return pd.DataFrame(
            rows, columns=["rank", "product_id", "score", "member_scores", "reasons"]
        )

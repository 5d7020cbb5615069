"""Social source: products that the people someone follows bought, saved or posted about.

Scores are one sparse product, ``S = T @ E``: ``T`` the tie strength of every follow edge
(:mod:`recommender.ties`), ``E`` the evidence of every person on every product, in four
components (also the reason types):

* ``friends_purchased``: the person bought it (``purchase_weight``);
* ``friends_engaged``: carted or favourited it without buying it (``cart_weight``,
  ``favorite_weight``);
* ``friends_posted``: linked it in a post (``post_weight``);
* ``kol_pick``: a KOL (``users.is_kol``) linked it in a post (``kol_weight``) — an
  influencer's shopping guide, kept apart so the ranker and the reasons can tell.

A person counts once per product and component, with the weight of their most recent
event times ``0.5 ** (age / half_life_days)``; a purchase supersedes the same person's cart
and favourite. Products without social evidence score ``-inf``, so a list holds only
socially supported products (the hybrid fills the rest from other sources).

Privacy: a person with ``share_purchases == False`` never contributes purchases, carts or
favourites. They are left out of ``E`` when it is built, so no score, reason or share
target can reveal them. Their *posts* linking products are public, written to be seen, and
still count as ``friends_posted`` / ``kol_pick`` (whose text says "posted about", never
"bought").

The fitted source takes live writes (:meth:`SocialSource.add_event`, ``add_follow``,
``remove_follow``, ``add_post``) on small overlays, reflected in the next request.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from recommender.base import Reason, Recommender, sparse_pairs, sparse_top_n
from recommender.data import TrainingData, binary, compact, row_positions, take_rows
from recommender.errors import UnknownIdError
from recommender.schema import EVENT_TYPES
from recommender.ties import Ties, decay, stored

COMPONENTS: tuple[str, ...] = ("friends_purchased", "friends_engaged", "friends_posted", "kol_pick")
"""Score components of :meth:`SocialSource.score_components`; also the reason types."""

MAX_NAMED = 3
"""People named in one reason; the others are counted."""

SHARE_REASONS: tuple[str, ...] = (
    "category_buyer",
    "category_interest",
    "category_poster",
    "similar_taste",
    "mutual_friends",
    "close_contact",
    "follows",
)
"""Reason types of :meth:`SocialSource.share_targets`, in the order they are listed."""

SIMILAR_TASTE = 0.25
"""Cosine from which a share target's co-engagement is worth a ``similar_taste`` reason
(about the top quarter on the synthetic data; below it nearly everyone qualifies)."""


class SocialSource(Recommender):
    """Products engaged with by the people a person follows, weighted by tie strength.

    Parameters
    ----------
    purchase_weight, cart_weight, favorite_weight, post_weight : float
        Strength of a followee's purchase, cart, favourite and product-linking post
        (defaults keep purchase > cart > favourite > post).
    kol_weight : float
        Strength of a followed KOL's product-linking post (a shopping guide).
    half_life_days : float
        Age at which an event or post counts half.
    mutual_weight, mention_weight, repost_weight, group_weight, tie_half_life_days : float
        Tie strength (:class:`~recommender.ties.Ties`): mutual-follow bonus, weights of the
        damped @-mention, repost and shared-group counts, half-life of contacts.
    """

    source_name = "social"

    def __init__(
        self,
        *,
        purchase_weight: float = 1.0,
        cart_weight: float = 0.6,
        favorite_weight: float = 0.4,
        post_weight: float = 0.3,
        kol_weight: float = 0.5,
        half_life_days: float = 14.0,
        mutual_weight: float = 1.0,
        mention_weight: float = 0.5,
        repost_weight: float = 0.5,
        group_weight: float = 0.3,
        tie_half_life_days: float = 30.0,
    ) -> None:
        self.purchase_weight = purchase_weight
        self.cart_weight = cart_weight
        self.favorite_weight = favorite_weight
        self.post_weight = post_weight
        self.kol_weight = kol_weight
        self.half_life_days = half_life_days
        self.mutual_weight = mutual_weight
        self.mention_weight = mention_weight
        self.repost_weight = repost_weight
        self.group_weight = group_weight
        self.tie_half_life_days = tie_half_life_days

    # ------------------------------------------------------------------- fit
    def _fit(self, data: TrainingData) -> None:
        self._validate_params()
        users = data.dataset.users
        self.handles_ = users["handle"].astype(str).to_numpy()
        self.is_kol_ = users["is_kol"].to_numpy(dtype=bool)
        self.shares_ = users["share_purchases"].to_numpy(dtype=bool)
        self.ties_ = Ties.from_data(
            data,
            mutual_weight=self.mutual_weight,
            mention_weight=self.mention_weight,
            repost_weight=self.repost_weight,
            group_weight=self.group_weight,
            half_life_days=self.tie_half_life_days,
        )
        evidence = {**self._event_evidence(data), **self._post_evidence(data)}
        self.evidence_ = {c: compact(m) for c, m in evidence.items()}
        self.total_ = compact(sp.csr_array(sum(self.evidence_[c] for c in COMPONENTS)))
        # Side by side, so explaining slices the rows of a person's followees once.
        self.stacked_ = compact(sp.csr_array(sp.hstack([self.evidence_[c] for c in COMPONENTS])))
        self._fit_share_targets(data)
        self._live = {c: {} for c in COMPONENTS}  # component -> (u, i) -> current value
        self._fitted = {c: {} for c in COMPONENTS}  # component -> (u, i) -> value at fit
        self._live_posts: dict[tuple[int, int], int] = {}  # (u, i) -> latest post id
        self._live_bought: dict[int, set[int]] = {}
        self._live_cat: dict[tuple[str, int, int], int] = {}  # (kind, u, category) -> n
        self._deltas: dict[str, sp.csr_array] | None = None

    def _validate_params(self) -> None:
        for name in (
            "purchase_weight",
            "cart_weight",
            "favorite_weight",
            "post_weight",
            "kol_weight",
        ):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} == {value}, must be >= 0.")
        for name in ("half_life_days", "tie_half_life_days"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} == {value}, must be > 0.")

    def _event_evidence(self, data: TrainingData) -> dict[str, sp.csr_array]:
        """Purchases and carts/favourites of people who share them."""
        inter = data.interactions
        event = inter["event"].astype(str).to_numpy()
        u, i = inter["u"].to_numpy(), inter["i"].to_numpy()
        weight = decay(inter["ts"], data.now, self.half_life_days)
        public = self.shares_[u]
        shape = (data.n_users, data.n_items)
        buy = public & (event == "purchase")
        bought = _max_matrix(u[buy], i[buy], self.purchase_weight * weight[buy], shape)
        save = public & np.isin(event, ["cart", "favorite"])
        strength = np.where(event == "cart", self.cart_weight, self.favorite_weight)
        saved = _max_matrix(u[save], i[save], (strength * weight)[save], shape)
        saved = sp.csr_array(saved - saved.multiply(bought > 0))  # a purchase supersedes
        saved.eliminate_zeros()
        return {"friends_purchased": bought, "friends_engaged": saved}

    def _post_evidence(self, data: TrainingData) -> dict[str, sp.csr_array]:
        """Posts linking products: everyone's (posts are public), KOLs' apart."""
        posts = data.posts[data.posts["product_id"].notna()]
        u = posts["u"].to_numpy()
        i = self.items_.lookup(posts["product_id"].to_numpy(dtype=np.int64), missing="ignore")
        weight = decay(posts["created_ts"], data.now, self.half_life_days)
        known = i >= 0
        u, i, weight = u[known], i[known], weight[known]
        kol = self.is_kol_[u]
        shape = (data.n_users, data.n_items)
        # The latest linking post of each (person, product): what a reason points to.
        keys = u.astype(np.int64) * data.n_items + i
        ts = pd.DatetimeIndex(posts["created_ts"]).asi8[known]
        order = np.lexsort((-ts, keys))
        first = np.r_[True, keys[order][1:] != keys[order][:-1]]
        self._post_keys = keys[order][first]
        self._post_ids = posts["post_id"].to_numpy(dtype=np.int64)[known][order][first]
        # Authors by post id, for live reposts (a dict of every post would be slow to build).
        post_ids = data.posts["post_id"].to_numpy(dtype=np.int64)
        by_id = np.argsort(post_ids)
        self._post_index = (post_ids[by_id], data.posts["u"].to_numpy()[by_id])
        self._live_authors: dict[int, int] = {}
        return {
            "friends_posted": _max_matrix(u[~kol], i[~kol], self.post_weight * weight[~kol], shape),
            "kol_pick": _max_matrix(u[kol], i[kol], self.kol_weight * weight[kol], shape),
        }

    # ----------------------------------------------------------------- score
    def _score(self, users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), self.data_.n_items), -np.inf, dtype=np.float32)
        coo = self._sparse_scores(users).tocoo()
        out[coo.row, coo.col] = coo.data
        return out

    def _sparse_scores(self, users: np.ndarray) -> sp.csr_array:
        """The finite entries of :meth:`_score` (positive evidence, not bought live)."""
        users = np.asarray(users, dtype=np.int64)
        ties = self.ties_.rows(users)
        scores = sp.csr_array(ties @ self.total_)
        deltas = self._delta_matrices()
        if deltas:
            scores = sp.csr_array(scores + ties @ deltas["total"])
        scores = sp.csr_array(scores, dtype=np.float32)
        scores.sum_duplicates()
        scores.data[~(scores.data > 0)] = 0.0
        for row, u in enumerate(users.tolist()):
            bought = self._live_bought.get(u)
            if bought:
                lo, hi = scores.indptr[row], scores.indptr[row + 1]
                hit = np.isin(scores.indices[lo:hi], list(bought))
                scores.data[lo:hi][hit] = 0.0
        scores.eliminate_zeros()
        return scores

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return sparse_pairs(self._sparse_scores(users), items)

    def candidates(self, users, n, *, exclude=None, blocked=None):
        check_is_fitted(self, "data_")
        scores = self._sparse_scores(np.asarray(users, dtype=np.int64))
        return sparse_top_n(scores, n, exclude=exclude, blocked=blocked)

    def score_components(self, user_ids) -> dict[str, np.ndarray]:
        """Each component's score (0 without evidence) for each raw user id, and
        ``followees_engaged``: how many followees have any evidence on the product.

        Features for a ranker: dense float32 arrays of shape (len(user_ids), n_items).
        """
        check_is_fitted(self, "data_")
        users = self.users_.lookup(np.atleast_1d(user_ids))
        ties = self.ties_.rows(users)
        out = {c: (ties @ self._evidence(c, None)).toarray().astype(np.float32) for c in COMPONENTS}
        any_evidence = sum(self._evidence(c, None) for c in COMPONENTS) > 0
        count = (ties > 0).astype(np.float32) @ any_evidence.astype(np.float32)
        out["followees_engaged"] = count.toarray()
        return out

    def _evidence(self, component: str, users: np.ndarray | None) -> sp.csr_array:
        """Current evidence of one component (live writes applied), for some rows."""
        base = self.evidence_[component]
        deltas = self._delta_matrices()
        if users is None:
            return sp.csr_array(base + deltas[component]) if deltas else base
        rows = take_rows(base, users)
        if deltas:
            rows = sp.csr_array(rows + deltas[component][users])
            rows.eliminate_zeros()
        return rows

    # --------------------------------------------------------------- explain
    def _explain(self, user: int, items: np.ndarray) -> list[list[Reason]]:
        items = np.asarray(items, dtype=np.int64)
        ties = self.ties_.rows(np.array([user]))
        followees, strength = ties.indices, ties.data
        order = np.lexsort((followees, -strength))  # strongest ties first
        followees, strength = followees[order], strength[order]
        n_items = self.data_.n_items
        columns = (items[None, :] + n_items * np.arange(len(COMPONENTS))[:, None]).ravel()
        # evidence[f, k, j]: followee f's component k on items[j] (fitted + live), read
        # from the CSR arrays of the followees' rows (no sparse slicing per person).
        evidence = np.zeros((len(followees), len(columns)), dtype=self.stacked_.dtype)
        deltas = self._delta_matrices()
        for matrix in [self.stacked_, deltas["stacked"]] if deltas else [self.stacked_]:
            owner, slot, value = _entries_at(matrix, followees, columns)
            np.add.at(evidence, (owner, slot), value)
        evidence = evidence.reshape(len(followees), len(COMPONENTS), len(items))
        reasons = []
        for col, item in enumerate(items.tolist()):
            found = []
            for k, c in enumerate(COMPONENTS):
                values = evidence[:, k, col]
                who = np.flatnonzero(values > 0)
                if len(who):
                    weight = float(strength[who] @ values[who])
                    found.append((weight, self._reason(c, followees[who], item)))
            found.sort(key=lambda pair: -pair[0])  # largest contribution first
            reasons.append([reason for _, reason in found])
        return reasons

    def _reason(self, component: str, people: np.ndarray, item: int) -> Reason:
        """The reason of one component, naming the first (strongest-tie) people."""
        named = people[:MAX_NAMED]
        handles = [str(h) for h in self.handles_[named]]
        post_ids = []
        if component in ("friends_posted", "kol_pick"):
            post_ids = [self._latest_post(int(p), item) for p in named]
        evidence = {
            "user_ids": [int(x) for x in self.users_.raw(named)],
            "handles": handles,
            "count": len(people),
            "post_ids": [p for p in post_ids if p is not None],
        }
        return Reason(component, _reason_text(component, handles, len(people)), evidence, "social")

    def _latest_post(self, u: int, item: int) -> int | None:
        if (u, item) in self._live_posts:
            return self._live_posts[(u, item)]
        key = u * self.data_.n_items + item
        pos = np.searchsorted(self._post_keys, key)
        if pos < len(self._post_keys) and self._post_keys[pos] == key:
            return int(self._post_ids[pos])
        return None

    # ------------------------------------------------------------------ live
    def add_event(self, user_id: int, product_id: int, event: str, ts=None) -> None:
        """A new shopping event; a purchase, cart or favourite of someone who shares them
        reaches their followers' next scores. Views and clicks carry no social proof."""
        check_is_fitted(self, "data_")
        if event not in EVENT_TYPES:
            raise ValueError(f"event == {event!r}, must be one of {list(EVENT_TYPES)}.")
        u, i = self._user(user_id), self._item(product_id)
        if event == "purchase":
            self._live_bought.setdefault(u, set()).add(i)
        if event not in ("purchase", "cart", "favorite") or not self.shares_[u]:
            return
        self._count_category("purchase" if event == "purchase" else "engaged", u, i)
        value = self._weight_at(getattr(self, f"{event}_weight"), ts)
        if event == "purchase":
            self._raise("friends_purchased", u, i, value)
            self._set("friends_engaged", u, i, 0.0)
        elif self._current("friends_purchased", u, i) == 0:
            self._raise("friends_engaged", u, i, value)

    def add_follow(self, follower_id: int, followee_id: int) -> None:
        """``follower_id`` now follows ``followee_id`` (no-op if already)."""
        check_is_fitted(self, "data_")
        self.ties_.add_follow(self._user(follower_id), self._user(followee_id))

    def remove_follow(self, follower_id: int, followee_id: int) -> None:
        """``follower_id`` stops following ``followee_id`` (no-op if not following)."""
        check_is_fitted(self, "data_")
        self.ties_.remove_follow(self._user(follower_id), self._user(followee_id))

    def add_post(
        self,
        post_id: int,
        user_id: int,
        *,
        product_id: int | None = None,
        mentions: Sequence[int] = (),
        repost_of: int | None = None,
        ts=None,
    ) -> None:
        """A new post: a product link is evidence for the author's followers (a KOL's is
        a ``kol_pick``); mentions and reposts strengthen the ties they touch."""
        check_is_fitted(self, "data_")
        u = self._user(user_id)
        i = None if product_id is None else self._item(product_id)
        mentioned = self.users_.lookup(list(mentions)) if len(mentions) else []
        original = None if repost_of is None else self._author(int(repost_of))
        self._live_authors[int(post_id)] = u
        contact = self._weight_at(1.0, ts, self.tie_half_life_days)
        for v in np.unique(mentioned).tolist():
            self.ties_.add_contact(u, v, mentions=contact)
        if original is not None:
            self.ties_.add_contact(u, original, reposts=contact)
        if i is not None:
            kol = bool(self.is_kol_[u])
            weight = self.kol_weight if kol else self.post_weight
            self._raise("kol_pick" if kol else "friends_posted", u, i, self._weight_at(weight, ts))
            self._live_posts[(u, i)] = int(post_id)
            self._count_category("post", u, i)

    def _author(self, post_id: int) -> int:
        """Author (user index) of a post known to the model; unknown posts raise."""
        if post_id in self._live_authors:
            return self._live_authors[post_id]
        ids, authors = self._post_index
        pos = np.searchsorted(ids, post_id)
        if pos < len(ids) and ids[pos] == post_id:
            return int(authors[pos])
        raise UnknownIdError("post", [post_id])

    def _user(self, user_id: int) -> int:
        return int(self.users_.lookup([user_id])[0])

    def _item(self, product_id: int) -> int:
        return int(self.items_.lookup([product_id])[0])

    def _weight_at(self, weight: float, ts, half_life: float | None = None) -> float:
        when = self.data_.now if ts is None else pd.Timestamp(ts)
        when = when.tz_localize("UTC") if when.tzinfo is None else when
        factor = decay(pd.DatetimeIndex([when]), self.data_.now, half_life or self.half_life_days)
        return float(weight * factor[0])

    def _current(self, component: str, u: int, i: int) -> float:
        live = self._live[component]
        return live[(u, i)] if (u, i) in live else stored(self.evidence_[component], u, i)

    def _raise(self, component: str, u: int, i: int, value: float) -> None:
        if value > self._current(component, u, i):
            self._set(component, u, i, value)

    def _set(self, component: str, u: int, i: int, value: float) -> None:
        if (u, i) in self._live[component] or value != self._current(component, u, i):
            if (u, i) not in self._fitted[component]:
                self._fitted[component][(u, i)] = stored(self.evidence_[component], u, i)
            self._live[component][(u, i)] = value
            self._deltas = None

    def _delta_matrices(self) -> dict[str, sp.csr_array]:
        """Live value minus fitted value per component, and their sum (``total``); empty
        when nothing changed. Cached until the next write."""
        if not any(self._live.values()):
            return {}
        if self._deltas is None:
            shape = self.total_.shape
            deltas = {}
            for c in COMPONENTS:
                pairs = self._live[c]
                keys = np.array(list(pairs), dtype=np.int64).reshape(-1, 2)
                new = np.fromiter(pairs.values(), np.float64, len(pairs))
                fitted = self._fitted[c]
                old = np.fromiter((fitted[k] for k in pairs), np.float64, len(pairs))
                delta = (new - old).astype(np.float32)
                deltas[c] = sp.csr_array((delta, (keys[:, 0], keys[:, 1])), shape=shape)
            deltas["total"] = sp.csr_array(sum(deltas[c] for c in COMPONENTS))
            deltas["stacked"] = sp.csr_array(sp.hstack([deltas[c] for c in COMPONENTS]))
            self._deltas = deltas
        return self._deltas

    # --------------------------------------------------------- share targets
    def _fit_share_targets(self, data: TrainingData) -> None:
        """Per-person category counts (public behaviour only) and item co-engagement."""
        paths = data.dataset.products["category_path"].astype(str).to_numpy()
        self.categories_, self.item_category_ = np.unique(paths, return_inverse=True)
        n_cat = len(self.categories_)
        inter = data.interactions
        event = inter["event"].astype(str).to_numpy()
        u, i = inter["u"].to_numpy(), inter["i"].to_numpy()
        public = self.shares_[u]
        cat = self.item_category_[i]
        shape = (data.n_users, n_cat)
        buy = public & (event == "purchase")
        save = public & np.isin(event, ["cart", "favorite"])
        posts = data.posts[data.posts["product_id"].notna()]
        pi = self.items_.lookup(posts["product_id"].to_numpy(dtype=np.int64), missing="ignore")
        pu = posts["u"].to_numpy()[pi >= 0]
        self._category_counts = {
            "purchase": _count_matrix(u[buy], cat[buy], shape),
            "engaged": _count_matrix(u[save], cat[save], shape),
            "post": _count_matrix(pu, self.item_category_[pi[pi >= 0]], shape),
        }
        # Co-engagement from everyone's behaviour in aggregate; a person's own row is
        # read only for people who share their activity. Only where the entries are is
        # kept, by person and by product, without values (on `large` two 0.5 GiB copies
        # less).
        engaged = binary(data.user_items)
        self._engaged = (engaged.indptr, engaged.indices)
        by_item = engaged.T.tocsr()
        self._engaged_by = (by_item.indptr, by_item.indices)
        self._item_degree = np.diff(by_item.indptr).astype(np.float32)

    def _count_category(self, kind: str, u: int, i: int) -> None:
        key = (kind, u, int(self.item_category_[i]))
        self._live_cat[key] = self._live_cat.get(key, 0) + 1

    def share_targets(self, user_id: int, product_id: int, n: int = 10) -> pd.DataFrame:
        """The people ``user_id`` follows who would most likely want ``product_id``.

        Tie strength times ``1 + affinity``; affinity is the person's purchases, carts or
        favourites and posts in the product's category and their engagement with products
        engaged together with it. People who already bought it are left out. Purchases,
        carts, favourites and co-engagement of people who do not share purchases are never
        used (only their public posts), neither to rank, to reason nor to leave out, so no
        answer reveals them.

        Returns
        -------
        pandas.DataFrame
            Columns user_id, handle, score, reasons (list of reason dicts, types in
            :data:`SHARE_REASONS`), best first, at most ``n`` rows.
        """
        check_is_fitted(self, "data_")
        if n < 1:
            raise ValueError(f"n == {n}, must be >= 1.")
        u, item = self._user(user_id), self._item(product_id)
        ties = self.ties_.rows(np.array([u]))
        people, strength = ties.indices, ties.data
        if len(people) == 0:
            return pd.DataFrame(columns=["user_id", "handle", "score", "reasons"])
        keep = ~self._bought(people, item)
        people, strength = people[keep], strength[keep]
        cat = int(self.item_category_[item])
        counts = {k: self._category_count(k, people, cat) for k in self._category_counts}
        similar = self._co_engagement(people, item)
        affinity = (
            np.log1p(counts["purchase"])
            + 0.5 * np.log1p(counts["engaged"])
            + 0.5 * np.log1p(counts["post"])
            + similar
        )
        score = strength * (1.0 + affinity)
        order = np.lexsort((people, -score))[:n]
        rows = []
        for k in order.tolist():
            v = int(people[k])
            found = {kind: int(counts[kind][k]) for kind in counts}
            reasons = self._share_reasons(u, v, item, found, float(similar[k]))
            rows.append(
                {
                    "user_id": int(self.users_.raw(v)),
                    "handle": str(self.handles_[v]),
                    "score": float(score[k]),
                    "reasons": [r.to_dict() for r in reasons],
                }
            )
        return pd.DataFrame(rows, columns=["user_id", "handle", "score", "reasons"])

    def _bought(self, people: np.ndarray, item: int) -> np.ndarray:
        """Who of ``people`` visibly bought ``item``. A private buyer stays a target:
        leaving them out would tell the asker exactly who bought it."""
        bought = self.data_.rows("purchased", people)[:, [item]].toarray().ravel() > 0
        live = np.array([item in self._live_bought.get(int(p), ()) for p in people], bool)
        return (bought | live) & self.shares_[people]

    def _category_count(self, kind: str, people: np.ndarray, cat: int) -> np.ndarray:
        base = self._category_counts[kind][people][:, [cat]].toarray().ravel()
        live = [self._live_cat.get((kind, int(p), cat), 0) for p in people]
        return base + np.asarray(live, dtype=base.dtype)

    def _co_engagement(self, people: np.ndarray, item: int) -> np.ndarray:
        """Best cosine between ``item`` and a product the person engaged with (0 for
        people who do not share their activity)."""
        user_ptr, user_items = self._engaged
        item_ptr, item_users = self._engaged_by
        fans = item_users[item_ptr[item] : item_ptr[item + 1]]
        co = np.bincount(
            user_items[row_positions(user_ptr, fans)[1]], minlength=len(self._item_degree)
        ).astype(np.float32)
        co[item] = 0.0
        norm = np.sqrt(np.maximum(self._item_degree, 1.0) * max(self._item_degree[item], 1.0))
        cosine = co / norm
        ptr, pos = row_positions(user_ptr, people)
        best = np.zeros(len(people), dtype=cosine.dtype)
        np.maximum.at(
            best, np.repeat(np.arange(len(people)), np.diff(ptr)), cosine[user_items[pos]]
        )
        return np.where(self.shares_[people], best, 0.0)

    def _share_reasons(
        self, u: int, v: int, item: int, counts: dict, similar: float
    ) -> list[Reason]:
        handle = f"@{self.handles_[v]}"
        base = {"user_id": int(self.users_.raw(v)), "handle": str(self.handles_[v])}
        category = {"category": str(self.categories_[self.item_category_[item]])}
        reasons = []
        if counts["purchase"]:
            text = f"{handle} bought from this category {_times(counts['purchase'])}"
            reasons.append(("category_buyer", text, {**category, "count": counts["purchase"]}))
        elif counts["engaged"]:
            text = f"{handle} saved products from this category"
            reasons.append(("category_interest", text, {**category, "count": counts["engaged"]}))
        if counts["post"]:
            text = f"{handle} posted about this category {_times(counts['post'])}"
            reasons.append(("category_poster", text, {**category, "count": counts["post"]}))
        if similar >= SIMILAR_TASTE:
            reasons.append(("similar_taste", f"{handle} likes similar products", {}))
        if self.ties_.follows_edge(v, u):
            reasons.append(("mutual_friends", f"you and {handle} are mutual friends", {}))
        mentions, reposts = self.ties_.contact(u, v)
        if mentions > 0 or reposts > 0:
            how = "@-mention" if mentions > 0 else "repost"
            reasons.append(("close_contact", f"you and {handle} {how} each other", {}))
        if not reasons:
            reasons.append(("follows", f"you follow {handle}", {}))
        return [Reason(t, text, {**base, **ev}, "social") for t, text, ev in reasons]


# ---------------------------------------------------------------- helpers
def _max_matrix(u: np.ndarray, i: np.ndarray, value: np.ndarray, shape) -> sp.csr_array:
    """Sparse matrix holding the largest ``value`` of each ``(u, i)`` pair."""
    keys = u.astype(np.int64) * shape[1] + i
    order = np.lexsort((value, keys))
    keys, value = keys[order], value[order]
    last = np.r_[keys[1:] != keys[:-1], True] if len(keys) else np.zeros(0, bool)
    keys, value = keys[last], value[last]
    rows, cols = np.divmod(keys, shape[1])
    return sp.csr_array((value.astype(np.float32), (rows, cols)), shape=shape)


def _count_matrix(rows: np.ndarray, cols: np.ndarray, shape) -> sp.csr_array:
    out = sp.csr_array((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    out.sum_duplicates()
    return out


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _entries_at(
    matrix: sp.csr_array, rows: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stored entries of ``matrix[rows][:, columns]`` as (row position, column
    position, value), read from the CSR arrays (``columns`` without repeats)."""
    indptr = matrix.indptr
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    if total == 0 or len(columns) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, matrix.dtype)
    ends = np.cumsum(lengths)
    positions = np.repeat(starts - (ends - lengths), lengths) + np.arange(total)
    cols = matrix.indices[positions]
    order = np.argsort(columns, kind="stable")
    ordered = columns[order]
    at = np.minimum(np.searchsorted(ordered, cols), len(ordered) - 1)
    hit = ordered[at] == cols
    owner = np.repeat(np.arange(len(rows)), lengths)
    return owner[hit], order[at[hit]], matrix.data[positions[hit]]


def _reason_text(component: str, handles: list[str], count: int) -> str:
    """A sentence naming ``handles`` out of ``count`` people."""
    at = [f"@{h}" for h in handles]
    more = count - len(at)
    people = "1 person" if count == 1 else f"{count} people"
    listed = ", ".join(at) + (f" and {more} more" if more > 0 else "")
    if component == "friends_purchased":
        return f"{people} you follow bought this: {listed}"
    if component == "friends_engaged":
        return f"{people} you follow saved this to their cart or favourites: {listed}"
    if component == "friends_posted":
        return f"{_and_list(at, more)} posted about this"
    kols = "KOL" if count == 1 else "KOLs"
    verb = "recommends" if count == 1 else "recommend"
    return f"{kols} {_and_list(at, more)} {verb} this"


def _and_list(names: list[str], more: int) -> str:
    if more > 0:
        return ", ".join(names) + f" and {more} more"
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + f" and {names[-1]}"

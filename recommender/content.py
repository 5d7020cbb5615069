"""Content source: what a person writes, matched to what products say.

A person's profile is the sum of the TF-IDF vectors of their most recent posts and reposts
(a repost counts the text it reposts), hashtags weighing extra and every post decaying
exponentially with its age at the cut-off. A product's vector is the TF-IDF of its title,
description and brand plus that of its category path; a product scores the cosine of the
two. English and Chinese share one analyzer (:func:`recommender.text.analyze`: Latin words,
CJK character n-grams) and one idf, learned from product texts and posts together.

Post vectors keep only the terms some product uses before they are normalised: a word no
product uses can never match, and left in it would dilute the post's weight in the profile.

A product sharing no term with the profile cannot be recommended (its score is ``-inf``), so
a person who has written nothing that matches the catalogue gets no recommendations from
this source and the hybrid falls back to the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from recommender.base import Reason, Recommender, sparse_top_n
from recommender.data import IdIndex, TrainingData, compact, take_rows
from recommender.metrics import top_k
from recommender.text import excerpt, make_vectorizer, readable_words

DAY_SECONDS = 86_400.0
SCORE_BLOCK = 256
"""People whose scores :meth:`ContentSource.candidates` holds at once."""
FLOOR_MIN_POSTINGS = 20_000
"""From this many postings read for a person, :meth:`ContentSource._accumulate` drops the
products that cannot make the list before ranking (below it, ranking them all is cheaper)."""
PRODUCT_TEXT = ("title", "description", "brand")
"""Product columns whose text describes a product (besides its category path)."""


@dataclass
class _Posts:
    """One person's profile posts, newest first."""

    ids: np.ndarray  # int64, -1 for a live post added without an id
    ages: np.ndarray  # days before the model's ``now`` (negative: after it)
    weights: np.ndarray  # repost weight (1 for an own post), before time decay
    vectors: sp.csr_array  # TF-IDF of text plus weighted hashtags
    texts: np.ndarray  # what the person would recognise (a repost: the reposted text)
    reposts: np.ndarray  # bool


class ContentSource(Recommender):
    """Products whose text matches what the person posts, recent posts weighing more.

    Parameters
    ----------
    half_life_days : float, default=14.0
        A post's weight in the profile halves every this many days before the cut-off.
    profile_posts : int, default=50
        The profile uses the person's most recent posts, at most this many.
    profile_terms : int or None, default=32
        The profile keeps its this many strongest terms (None: all). A prolific writer's
        profile otherwise runs to a hundred weak terms, and retrieval over them scans a
        large share of the catalogue (on ``large`` such people took 0.2–0.8 s a request).
    use_reposts : bool, default=True
        Whether reposts count (with the text they repost).
    repost_weight : float, default=0.5
        Weight of a repost relative to a post the person wrote.
    hashtag_weight : float, default=0.5
        Extra weight of a post's hashtags relative to its text (hashtags written inside the
        text already count as text).
    category_weight : float, default=1.0
        Weight of a product's category path relative to its title, description and brand
        (the path is the most reliable description of what a product is).
    max_features : int or None, default=2**17
        Largest vocabulary (the most frequent terms of product texts, category paths and
        posts).
    min_df : int or float, default=1
        Smallest document frequency of a term over product texts, category paths and
        distinct posts (a count, or a share when a float in (0, 1]).
    word_ngram_range : tuple of int, default=(1, 2)
        Word n-grams of Latin text.
    cjk_ngram_range : tuple of int, default=(1, 2)
        Character n-grams of Chinese (Japanese, Korean) text.

    Attributes
    ----------
    vectorizer_ : sklearn.feature_extraction.text.TfidfVectorizer
        Fitted on product texts, category paths and distinct posts; rebuilt from
        ``vocabulary_`` and ``idf_`` by :func:`recommender.text.tfidf_from_arrays`.
    vocabulary_ : numpy.ndarray of str
        The terms in column order (``vectorizer_.vocabulary_`` as an array).
    idf_ : numpy.ndarray of float
        Inverse document frequency of every term.
    item_vectors_ : scipy.sparse.csr_array, shape (n_items, n_terms)
        L2-normalised TF-IDF of every product (text plus weighted category path).
    user_profiles_ : scipy.sparse.csr_array, shape (n_users, n_terms)
        L2-normalised profile of every person (an empty row: nothing written that matches).
    post_ids_, post_users_, post_ages_, post_weights_, post_texts_, post_reposts_ : ndarray
        The profile posts, sorted by user index and newest first: id, user index, age in
        days at ``data_.now``, repost weight, text shown in reasons, whether a repost.
    post_vectors_ : scipy.sparse.csr_array, shape (n_posts, n_terms)
        TF-IDF of each profile post on the terms products use (text plus weighted
        hashtags), before the repost weight and time decay.
    """

    source_name = "content"

    def __init__(
        self,
        *,
        half_life_days: float = 14.0,
        profile_posts: int = 50,
        profile_terms: int | None = 32,
        use_reposts: bool = True,
        repost_weight: float = 0.5,
        hashtag_weight: float = 0.5,
        category_weight: float = 1.0,
        max_features: int | None = 2**17,
        min_df: int | float = 1,
        word_ngram_range: tuple[int, int] = (1, 2),
        cjk_ngram_range: tuple[int, int] = (1, 2),
    ) -> None:
        self.half_life_days = half_life_days
        self.profile_posts = profile_posts
        self.profile_terms = profile_terms
        self.use_reposts = use_reposts
        self.repost_weight = repost_weight
        self.hashtag_weight = hashtag_weight
        self.category_weight = category_weight
        self.max_features = max_features
        self.min_df = min_df
        self.word_ngram_range = word_ngram_range
        self.cjk_ngram_range = cjk_ngram_range

    # ------------------------------------------------------------------- fit
    def _fit(self, data: TrainingData) -> None:
        self._validate_params()
        vectorizer = make_vectorizer(
            word_ngram_range=self.word_ngram_range,
            cjk_ngram_range=self.cjk_ngram_range,
            max_features=self.max_features,
            min_df=self.min_df,
        )
        products = data.dataset.products
        paths, path_texts = pd.factorize(_strings(products["category_path"]))
        written, texts = pd.factorize(_strings(data.posts["text"]))
        documents = _product_documents(products, PRODUCT_TEXT)
        # One analysis pass over product texts, category paths and every distinct post: the
        # idf is learned from what products say and what people write alike, so words
        # everyone posts ("today", "之前") weigh little even when no product uses them.
        corpus = np.concatenate([documents, path_texts, texts])
        tfidf = sp.csr_array(vectorizer.fit_transform(corpus), dtype=np.float32)
        n, n_paths = len(documents), len(path_texts)
        self.vectorizer_ = vectorizer
        self.vocabulary_ = vectorizer.get_feature_names_out().astype(str)
        self.idf_ = vectorizer.idf_
        category = tfidf[n : n + n_paths][paths]
        self.item_vectors_ = _normalise_rows(tfidf[:n] + float(self.category_weight) * category)
        self._items_t = self.item_vectors_.T.tocsr()
        self._used_terms = None
        self._text_columns = None
        self._live_posts: dict[int, list[_Posts]] = {}
        rows = self._select_posts(data)
        self._fit_posts(data, rows, written, self._matchable(tfidf[n + n_paths :]))

    def _fit_posts(
        self, data: TrainingData, rows: np.ndarray, written: np.ndarray, text_vectors
    ) -> None:
        """Profile posts (``rows`` of ``data.posts``) and the profiles they add up to.

        ``text_vectors[written[r]]`` is the TF-IDF of the text of ``data.posts`` row ``r``.
        """
        posts = data.posts.iloc[rows]
        parent = _parent_rows(posts, data.posts)
        reposts = posts["repost_of"].notna().to_numpy()
        is_parent = parent >= 0
        vectors = text_vectors[written[rows]]
        if is_parent.any():
            # A repost says what it reposts: its comment plus the reposted text.
            lift = sp.csr_array(
                (
                    np.ones(is_parent.sum(), np.float32),
                    (np.flatnonzero(is_parent), written[parent[is_parent]]),
                ),
                shape=(len(rows), text_vectors.shape[0]),
            )
            vectors = _normalise_rows(vectors + lift @ text_vectors)
        tags = _joined(posts["hashtags"])
        if is_parent.any():
            parent_tags = _joined(data.posts["hashtags"].iloc[parent[is_parent]])
            tags[is_parent] = tags[is_parent] + " " + parent_tags
        texts = _strings(posts["text"])
        texts[is_parent] = _strings(data.posts["text"].iloc[parent[is_parent]])
        self.post_ids_ = posts["post_id"].to_numpy(np.int64)
        self.post_users_ = posts["u"].to_numpy(np.int64)
        age = (data.now - posts["created_ts"]).dt.total_seconds() / DAY_SECONDS
        self.post_ages_ = age.to_numpy(np.float64)
        self.post_weights_ = np.where(reposts, float(self.repost_weight), 1.0)
        self.post_texts_ = texts
        self.post_reposts_ = reposts
        self.post_vectors_ = compact(self._with_hashtags(sp.csr_array(vectors), tags))
        # Ages relative to each person's newest post: the same ranking once the profile is
        # normalised, without decayed weights underflowing for data years old (imports).
        newest = np.full(data.n_users, np.inf)
        np.minimum.at(newest, self.post_users_, self.post_ages_)
        weight = self.post_weights_ * self._decay(self.post_ages_ - newest[self.post_users_])
        to_users = sp.csr_array(
            (weight.astype(np.float32), (self.post_users_, np.arange(len(rows)))),
            shape=(data.n_users, len(rows)),
        )
        self.user_profiles_ = compact(self._profile(to_users @ self.post_vectors_))
        self._item_terms()  # built now, not by the first request after a (re)load

    def _validate_params(self) -> None:
        if not self.half_life_days > 0:
            raise ValueError(f"half_life_days == {self.half_life_days}, must be > 0.")
        _check_int("profile_posts", self.profile_posts, 1)
        if self.profile_terms is not None:
            _check_int("profile_terms", self.profile_terms, 1)
        for name in ("repost_weight", "hashtag_weight", "category_weight"):
            value = getattr(self, name)
            if not (isinstance(value, Real) and value >= 0):
                raise ValueError(f"{name} == {value}, must be >= 0.")
        if self.max_features is not None:
            _check_int("max_features", self.max_features, 1)
        df = self.min_df
        if isinstance(df, Integral) and not isinstance(df, bool):
            _check_int("min_df", df, 1)
        elif not (isinstance(df, Real) and 0 < df <= 1):
            raise ValueError(f"min_df == {df}, must be an int >= 1 or a float in (0, 1].")
        for name in ("word_ngram_range", "cjk_ngram_range"):
            value = getattr(self, name)
            ok = (
                isinstance(value, tuple | list)
                and len(value) == 2
                and all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)
                and 1 <= value[0] <= value[1]
            )
            if not ok:
                raise ValueError(f"{name} == {value}, must be (lo, hi) with 1 <= lo <= hi.")

    def _select_posts(self, data: TrainingData) -> np.ndarray:
        """Rows of every person's ``profile_posts`` most recent posts, by user, newest first."""
        posts = data.posts
        ts = posts["created_ts"].to_numpy("datetime64[us]").astype(np.int64)
        users = posts["u"].to_numpy(np.int64)
        order = np.lexsort((-ts, users))
        if not self.use_reposts:
            order = order[posts["repost_of"].isna().to_numpy()[order]]
        users = users[order]
        first = np.searchsorted(users, users, side="left")
        return order[np.arange(len(users)) - first < self.profile_posts]

    def _with_hashtags(self, vectors: sp.csr_array, hashtags: np.ndarray) -> sp.csr_array:
        if self.hashtag_weight:
            tags = self._matchable(_transform(self.vectorizer_, hashtags))
            vectors = vectors + float(self.hashtag_weight) * tags
        return sp.csr_array(vectors, dtype=np.float32)

    def _matchable(self, vectors) -> sp.csr_array:
        """Post vectors on the terms products use, L2-normalised again (so a post with one
        telling word, "weight", among words no product uses still counts in full)."""
        if getattr(self, "_used_terms", None) is None:
            n_terms = self.item_vectors_.shape[1]
            self._used_terms = np.bincount(self.item_vectors_.indices, minlength=n_terms) > 0
        vectors = sp.csr_array(vectors, dtype=np.float32, copy=True)
        vectors.data[~self._used_terms[vectors.indices]] = 0.0
        vectors.eliminate_zeros()
        return _normalise_rows(vectors)

    def _profile(self, weighted_terms) -> sp.csr_array:
        """Unit-length profiles of summed post vectors, each cut to its ``profile_terms``
        strongest terms (ties: the lower term index)."""
        matrix = sp.csr_array(weighted_terms, dtype=np.float32, copy=True)
        matrix.sum_duplicates()
        if self.profile_terms is not None and len(matrix.data):
            row = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
            order = np.lexsort((matrix.indices, -np.abs(matrix.data), row))
            rank = np.arange(len(order)) - matrix.indptr[row[order]]
            keep = np.zeros(len(order), dtype=bool)
            keep[order[rank < self.profile_terms]] = True
            matrix.data[~keep] = 0.0
            matrix.eliminate_zeros()
        return _normalise_rows(matrix)

    def _decay(self, ages: np.ndarray) -> np.ndarray:
        return 0.5 ** (np.maximum(ages, 0.0) / float(self.half_life_days))

    # ----------------------------------------------------------------- score
    def _score(self, users: np.ndarray) -> np.ndarray:
        sims = self._all_scores(users).tocoo()
        scores = np.full((len(users), self.item_vectors_.shape[0]), -np.inf, dtype=np.float32)
        scores[sims.row, sims.col] = sims.data
        return scores

    def _all_scores(self, users: np.ndarray) -> sp.csr_array:
        """The finite entries of :meth:`_score` (positive cosines) as a sparse matrix: every
        product sharing a term with the profile."""
        sims = sp.csr_array(self.user_profiles_[users] @ self._item_terms(), dtype=np.float32)
        sims.data[~(sims.data > 0)] = 0.0
        sims.eliminate_zeros()
        return sims

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Cosines of each ``(users[r], items[r, c])`` only (no catalogue pass)."""
        users = np.asarray(users, dtype=np.int64)
        out = np.full(items.shape, -np.inf, dtype=np.float32)
        profiles = take_rows(self.user_profiles_, users)
        for r in range(len(users)):
            lo, hi = profiles.indptr[r], profiles.indptr[r + 1]
            valid = items[r] >= 0
            if hi == lo or not valid.any():
                continue
            scores = self._dots(profiles.indices[lo:hi], profiles.data[lo:hi], items[r][valid])
            out[r, valid] = np.where(scores > 0, scores, -np.inf)
        return out

    def _dots(self, terms: np.ndarray, weights: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``profile · item`` of some items, summed term by term in the profile's order
        (the order of the sparse product of :meth:`_all_scores`: the same float32 sums)."""
        values = sp.csr_array(self.item_vectors_[items][:, terms]).toarray()
        acc = np.zeros(len(items), dtype=np.float32)
        for j in range(len(terms)):
            acc += weights[j] * values[:, j]
        return acc

    def candidates(self, users, n, *, exclude=None, blocked=None):
        """Each person's exact top-``n``: every product sharing a term with the profile,
        scored by :meth:`_accumulate` (:data:`SCORE_BLOCK` people at a time)."""
        check_is_fitted(self, "user_profiles_")
        users = np.asarray(users, dtype=np.int64)
        m = len(users)
        out_items = np.full((m, max(n, 0)), -1, dtype=np.int64)
        out_scores = np.full((m, max(n, 0)), -np.inf, dtype=np.float32)
        if n <= 0 or m == 0:
            return out_items, out_scores
        exclude = None if exclude is None else sp.csr_array(exclude)
        blocked = None if blocked is None else np.asarray(blocked, bool)
        for start in range(0, m, SCORE_BLOCK):
            rows = slice(start, start + SCORE_BLOCK)
            ex = None if exclude is None else exclude[rows]
            sims = self._accumulate(users[rows], n=n, exclude=ex, blocked=blocked)
            items, scores = sparse_top_n(sims, n, exclude=ex, blocked=blocked)
            out_items[rows], out_scores[rows] = items, scores
        return out_items, out_scores

    def _accumulate(self, users: np.ndarray, *, n=None, exclude=None, blocked=None):
        """:meth:`_all_scores` of some people, each summed into a dense row term by term.

        Each term's products are added in the profile's order, as the sparse product
        adds them: the same float32 sums. Without the product's cost of collecting and
        sorting each row over the whole catalogue. Measured on ``large``: one person,
        0.4 ms on average and 1.9 ms at most (a profile whose 32 terms reach 270,000
        postings) against 12 ms by the product; 512 people, 275 against 500-600 ms.
        (The threshold algorithm over weight-sorted postings, used before, read most of
        the lists anyway for some people: up to 138 ms.)

        With ``n`` (and the masks of :meth:`candidates`), a row keeps only the entries
        that can make its top ``n``: those at or above the ``n``-th best score among the
        products of the profile's heaviest term, which are exact scores too, so a floor
        of the top ``n``'s own. A person whose terms reach 100,000 products then leaves a
        few hundred to rank instead of all of them."""
        terms = self._item_terms()
        profiles = take_rows(self.user_profiles_, users)
        acc = np.zeros(terms.shape[1], dtype=np.result_type(profiles.dtype, terms.dtype))
        indptr, indices, data = [0], [], []
        for r in range(len(users)):
            acc[:] = 0
            lo_r, hi_r = profiles.indptr[r], profiles.indptr[r + 1]
            read = 0
            for j in range(lo_r, hi_r):
                t, w = profiles.indices[j], profiles.data[j]
                lo, hi = terms.indptr[t], terms.indptr[t + 1]
                acc[terms.indices[lo:hi]] += w * terms.data[lo:hi]
                read += hi - lo
            floor = 0.0
            if n is not None and hi_r > lo_r and read >= FLOOR_MIN_POSTINGS:
                heaviest = profiles.indices[lo_r + np.argmax(profiles.data[lo_r:hi_r])]
                banned = (
                    None
                    if exclude is None
                    else exclude.indices[exclude.indptr[r] : exclude.indptr[r + 1]]
                )
                floor = _floor(acc, terms, heaviest, n, banned, blocked)
            hit = np.flatnonzero(acc >= floor) if floor > 0 else np.flatnonzero(acc > 0)
            indices.append(hit)
            data.append(acc[hit].astype(np.float32))
            indptr.append(indptr[-1] + len(hit))
        return sp.csr_array(
            (
                np.concatenate([np.zeros(0, np.float32), *data]),
                np.concatenate([np.zeros(0, np.int64), *indices]),
                np.asarray(indptr),
            ),
            shape=(len(users), terms.shape[1]),
        )

    def _item_terms(self) -> sp.csr_array:
        """``item_vectors_.T`` as CSR (the fast right operand of a sparse product)."""
        if getattr(self, "_items_t", None) is None:
            self._items_t = self.item_vectors_.T.tocsr()
        return self._items_t

    def recent_matches(
        self, user: int, days: float, n: int, *, live_only: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Products matching only what the person posted in the last ``days`` (index space):
        the fresh intent a new post signals ("trying to lose weight before summer").

        With ``live_only`` (the default) only posts added by :meth:`add_post` since the fit
        count: the ranker has already weighed the posts it was trained with."""
        check_is_fitted(self, "user_profiles_")
        if live_only:
            live = getattr(self, "_live_posts", {}).get(user, [])
            if not live:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        posts = self._user_posts(user)
        recent = posts.ages <= days
        if live_only:
            live_ids = {int(i) for p in self._live_posts.get(user, []) for i in p.ids}
            recent &= np.isin(posts.ids, list(live_ids))
        if not recent.any():
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        weights = sp.csr_array(posts.weights[recent][None, :].astype(np.float32))
        vector = _normalise_rows(sp.csr_array(weights @ posts.vectors[recent]))
        scores = (vector @ self.item_vectors_.T).toarray().ravel()
        top = np.argsort(-scores, kind="stable")[:n]
        top = top[scores[top] > 0]
        return top.astype(np.int64), scores[top].astype(np.float32)

    def similar_items(self, item: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` products most similar in text to product index ``item``.

        Returns
        -------
        items : numpy.ndarray of int64
            Product indices, most similar first (fewer than ``n`` when fewer share a term;
            never ``item`` itself).
        scores : numpy.ndarray of float32
            Their cosine similarity to ``item``.
        """
        check_is_fitted(self, "item_vectors_")
        n_items = self.item_vectors_.shape[0]
        if not 0 <= item < n_items:
            raise IndexError(f"item == {item}, must be in [0, {n_items}).")
        if n < 1:
            raise ValueError(f"n == {n}, must be >= 1.")
        sims = (self.item_vectors_[[item]] @ self._item_terms()).toarray().ravel()
        sims[sims <= 0] = -np.inf
        sims[item] = -np.inf
        best = top_k(sims[None, :], n)[0]
        best = best[best >= 0]
        return best, sims[best].astype(np.float32)

    # --------------------------------------------------------------- explain
    def _explain(self, user: int, items: np.ndarray) -> list[list[Reason]]:
        profile = take_rows(self.user_profiles_, [user])
        if profile.nnz == 0 or len(items) == 0:
            return [[] for _ in items]
        posts = self._user_posts(user)
        vectors = self.item_vectors_[np.asarray(items, dtype=np.int64)]
        # The evidence is the post that adds most to the item's score.
        share = (posts.vectors @ vectors.T).toarray()
        share *= (posts.weights * self._decay(posts.ages - posts.ages.min()))[:, None]
        best = share.argmax(axis=0)
        terms, weights = _shared_terms(profile, vectors)
        documents = self._product_texts(items)
        reasons = []
        for row, post in enumerate(best):
            if len(terms[row]) == 0:
                reasons.append([])
                continue
            # Words of the quoted post, so the quote and the words agree.
            start, end = posts.vectors.indptr[post], posts.vectors.indptr[post + 1]
            in_post = np.isin(terms[row], posts.vectors.indices[start:end])
            in_post |= not in_post.any()
            term, weight = terms[row][in_post], weights[row][in_post]
            strongest = np.argsort(-weight, kind="stable")[:10]
            matched = zip(self.vocabulary_[term[strongest]], weight[strongest], strict=True)
            words = readable_words(dict(matched), str(posts.texts[post]), documents[row])
            reasons.append([self._reason(posts, int(post), words)])
        return reasons

    def _product_texts(self, items: np.ndarray) -> list[str]:
        """The text of some products, as the words of reasons are looked up in it."""
        if getattr(self, "_text_columns", None) is None:
            products = self.data_.dataset.products
            self._text_columns = [_strings(products[c]) for c in (*PRODUCT_TEXT, "category_path")]
        return [" \n ".join(column[i] for column in self._text_columns) for i in items]

    def _reason(self, posts: _Posts, post: int, words: list[str]) -> Reason:
        quote = excerpt(str(posts.texts[post]))
        lead = "Matches a post you reposted" if posts.reposts[post] else "Matches your post"
        post_id = int(posts.ids[post])
        return Reason(
            "post_match",
            f'{lead}: "{quote}" ({", ".join(words)})',
            {
                "post_id": post_id if post_id >= 0 else None,
                "matched_words": words,
                "post_text": quote,
            },
            self.source_name,
        )

    # ----------------------------------------------------------- live update
    def add_post(
        self,
        user_id: int,
        text: str,
        hashtags=(),
        created_ts=None,
        *,
        post_id: int | None = None,
    ) -> None:
        """Add a new post to the person's profile; the next ``recommend`` reflects it.

        Parameters
        ----------
        user_id : int
            The author (raw id); an unknown id raises
            :class:`~recommender.errors.UnknownIdError`.
        text : str
            The post.
        hashtags : sequence of str
            Its hashtags, without ``#``.
        created_ts : timestamp-like, optional
            When it was posted (default: the model's ``now``). Its weight decays from the
            model's ``now``, so a post from after the cut-off counts in full.
        post_id : int, optional
            Its id, shown as the evidence of reasons.
        """
        check_is_fitted(self, "user_profiles_")
        u = int(self.users_.lookup(user_id)[0])
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        tags = [hashtags] if isinstance(hashtags, str) else [str(t) for t in hashtags]
        now = self.data_.now
        ts = now if created_ts is None else pd.Timestamp(created_ts)
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        post = _Posts(
            ids=np.array([-1 if post_id is None else post_id], dtype=np.int64),
            ages=np.array([(now - ts).total_seconds() / DAY_SECONDS]),
            weights=np.ones(1),
            vectors=self._with_hashtags(
                self._matchable(self.vectorizer_.transform([text])),
                np.array([" ".join(tags)], dtype=object),
            ),
            texts=np.array([text], dtype=object),
            reposts=np.zeros(1, dtype=bool),
        )
        self._live_posts.setdefault(u, []).append(post)
        posts = self._user_posts(u)
        decay = self._decay(posts.ages - posts.ages.min())
        row = (posts.weights * decay).astype(np.float32) @ posts.vectors
        self._set_profile(u, self._profile(sp.csr_array(row[None, :])))

    def _user_posts(self, u: int) -> _Posts:
        """The person's profile posts (fitted and live), newest first."""
        lo, hi = np.searchsorted(self.post_users_, [u, u + 1])
        parts = [
            _Posts(
                self.post_ids_[lo:hi],
                self.post_ages_[lo:hi],
                self.post_weights_[lo:hi],
                self.post_vectors_[lo:hi],
                self.post_texts_[lo:hi],
                self.post_reposts_[lo:hi],
            ),
            *getattr(self, "_live_posts", {}).get(u, []),
        ]
        if len(parts) == 1:
            return parts[0]
        ages = np.concatenate([p.ages for p in parts])
        keep = np.argsort(ages, kind="stable")[: self.profile_posts]
        return _Posts(
            np.concatenate([p.ids for p in parts])[keep],
            ages[keep],
            np.concatenate([p.weights for p in parts])[keep],
            sp.vstack([p.vectors for p in parts], format="csr")[keep],
            np.concatenate([p.texts for p in parts])[keep],
            np.concatenate([p.reposts for p in parts])[keep],
        )

    def _set_profile(self, u: int, row: sp.csr_array) -> None:
        """Replace one row of ``user_profiles_`` (a new matrix, so readers never see a mix)."""
        old = self.user_profiles_
        start, end = old.indptr[u], old.indptr[u + 1]
        indptr = old.indptr.astype(np.int64)
        indptr[u + 1 :] += row.nnz - (end - start)
        self.user_profiles_ = sp.csr_array(
            (
                np.concatenate([old.data[:start], row.data, old.data[end:]]),
                np.concatenate([old.indices[:start], row.indices, old.indices[end:]]),
                indptr,
            ),
            shape=old.shape,
        )


# ------------------------------------------------------------------- helpers
def _product_documents(products: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    fields = [products[c].astype(object).fillna("").astype(str) for c in columns]
    doc = fields[0]
    for field in fields[1:]:
        doc = doc + " \n " + field
    return doc.to_numpy(dtype=object)


def _parent_rows(posts: pd.DataFrame, all_posts: pd.DataFrame) -> np.ndarray:
    """Row in ``all_posts`` of the post each of ``posts`` reposts (-1: none or unknown)."""
    parent = posts["repost_of"].to_numpy(dtype=np.float64, na_value=np.nan)
    rows = np.full(len(posts), -1, dtype=np.int64)
    has = ~np.isnan(parent)
    if has.any():
        index = IdIndex(all_posts["post_id"].to_numpy(np.int64), "post")
        rows[has] = index.lookup(parent[has].astype(np.int64), missing="ignore")
    return rows


def _shared_terms(
    profile: sp.csr_array, vectors: sp.csr_array
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per row of ``vectors``: the terms it shares with ``profile`` (one row) and their
    contributions to the cosine (product weight × profile weight)."""
    order = np.argsort(profile.indices)
    p_terms, p_weights = profile.indices[order], profile.data[order]
    pos = np.minimum(np.searchsorted(p_terms, vectors.indices), len(p_terms) - 1)
    contribution = np.where(p_terms[pos] == vectors.indices, vectors.data * p_weights[pos], 0.0)
    terms, weights = [], []
    for start, end in zip(vectors.indptr[:-1], vectors.indptr[1:], strict=True):
        hit = contribution[start:end] > 0
        terms.append(vectors.indices[start:end][hit])
        weights.append(contribution[start:end][hit])
    return terms, weights


def _strings(column: pd.Series) -> np.ndarray:
    return column.astype(object).fillna("").astype(str).to_numpy(dtype=object)


def _joined(column: pd.Series) -> np.ndarray:
    """A list-of-strings column as space-joined strings."""
    lists = pa.array(column, from_pandas=True)
    if not (pa.types.is_list(lists.type) or pa.types.is_large_list(lists.type)):
        lists = pa.array([list(v) if v is not None else [] for v in column], pa.list_(pa.string()))
    joined = pc.fill_null(pc.binary_join(lists, " "), "")
    return np.asarray(joined.to_pylist(), dtype=object)


def _transform(vectorizer, texts: np.ndarray) -> sp.csr_array:
    """TF-IDF of ``texts``, analysing each distinct text once (posts repeat a lot)."""
    codes, uniques = pd.factorize(np.asarray(texts, dtype=object))
    if len(uniques) == 0:
        return sp.csr_array((len(codes), len(vectorizer.idf_)), dtype=np.float32)
    return sp.csr_array(vectorizer.transform(uniques))[codes]


def _floor(acc, terms, term: int, n: int, banned, blocked) -> float:
    """The ``n``-th best exact score in ``acc`` among the unmasked products of ``term``
    (a floor of the person's top ``n``), 0 when fewer than ``n`` of them score."""
    some = terms.indices[terms.indptr[term] : terms.indptr[term + 1]]
    if banned is not None and len(banned):
        some = some[~np.isin(some, banned)]
    if blocked is not None:
        some = some[~blocked[some]]
    values = acc[some]
    values = values[values > 0]
    if len(values) < n:
        return 0.0
    return float(np.partition(values, len(values) - n)[len(values) - n])


def _normalise_rows(matrix) -> sp.csr_array:
    """Rows scaled to unit L2 norm (empty rows stay empty)."""
    matrix = sp.csr_array(matrix, dtype=np.float32, copy=True)
    matrix.sum_duplicates()
    lengths = np.sqrt(
        np.bincount(
            np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr)),
            weights=matrix.data.astype(np.float64) ** 2,
            minlength=matrix.shape[0],
        )
    )
    scale = np.divide(1.0, lengths, out=np.zeros_like(lengths), where=lengths > 0)
    matrix.data *= np.repeat(scale, np.diff(matrix.indptr)).astype(np.float32)
    return matrix


def _check_int(name: str, value, minimum: int) -> None:
    if not (isinstance(value, Integral) and not isinstance(value, bool) and value >= minimum):
        raise ValueError(f"{name} == {value}, must be an int >= {minimum}.")

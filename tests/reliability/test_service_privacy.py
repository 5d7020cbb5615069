"""Privacy over every user: no answer of the service reveals a purchase, cart or favourite
of a person whose ``share_purchases`` is false — not in recommendation reasons, share
targets (their reasons, or who is left out), group reasons, user pages, following lists
or the demo page's look-ups; neither for the dataset's events nor for live ones.

``tiny`` (1,000 people): every person over HTTP. ``small`` (10,000): the model's own
evidence for every person and every product, the hybrid's reasons for the 400 people most
exposed to private buyers, their share targets for a product a private followee bought,
and every endpoint over HTTP for 25 of them."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from fastapi.testclient import TestClient

import service.model_holder as model_holder
from recommender.dataset import Dataset
from recommender.hybrid import HybridRecommender
from service.app import create_app
from tests.service.conftest import fast_hybrid

PRIVATE_EVENTS = ("purchase", "cart", "favorite")
PRIVATE_REASONS = frozenset(
    {"friends_purchased", "friends_engaged", "category_buyer", "category_interest", "similar_taste"}
)
"""Reason types that tell what the people they name bought, saved or engaged with."""
PRIVATE_WORDS = re.compile(r"bought|buy|purchas|cart|favou?rite|saved|likes similar", re.I)
FORBIDDEN_KEYS = frozenset(
    {"purchases", "purchased", "bought", "cart", "carts", "favorites", "favourites", "events"}
)
"""Keys no answer may carry (a person's shopping history)."""
HANDLE = re.compile(r"@([^\s,:]+)")
SAMPLE = 400
"""People of ``small`` whose hybrid reasons and share targets are checked in the model."""
HTTP_SAMPLE = 25
"""Of them, people checked over HTTP."""
LANES = 3
"""Requests in flight at once when every person of ``tiny`` is checked over HTTP."""


@dataclass
class Oracle:
    """Who keeps purchases private, and what the answers said about people."""

    private: set[int]
    handles: dict[str, int]
    named_public: int = 0
    reasons: int = 0
    responses: int = 0
    leaks: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, dataset: Dataset) -> Oracle:
        users = dataset.users
        private = set(users.loc[~users["share_purchases"], "user_id"].astype(int))
        handles = dict(zip(users["handle"].astype(str), users["user_id"].astype(int), strict=True))
        return cls(private, handles)

    def check(self, where: str, body) -> None:
        """Record every leak in one answer (any JSON)."""
        self.responses += 1
        stack = [body]
        while stack:
            value = stack.pop()
            if isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, dict):
                if isinstance(value.get("type"), str) and isinstance(value.get("text"), str):
                    self._check_reason(where, value)
                for key, item in value.items():
                    if key in FORBIDDEN_KEYS:
                        self.leaks.append(f"{where}: key {key!r}")
                    if isinstance(item, dict | list):
                        stack.append(item)

    def _check_reason(self, where: str, reason: dict) -> None:
        self.reasons += 1
        if reason["type"] in PRIVATE_REASONS or PRIVATE_WORDS.search(reason["text"]):
            people = self._people(reason)
            if people & self.private:
                self.leaks.append(f"{where}: {reason}")
            self.named_public += len(people - self.private)

    def _people(self, reason: dict) -> set[int]:
        evidence = reason.get("evidence") or {}
        ids = {int(u) for u in evidence.get("user_ids", [])}
        if "user_id" in evidence:
            ids.add(int(evidence["user_id"]))
        names = [*evidence.get("handles", []), evidence.get("handle")]
        names += HANDLE.findall(reason["text"])
        ids |= {self.handles[h] for h in names if h in self.handles}
        return ids


def private_buys(dataset: Dataset, private: set[int]) -> pd.DataFrame:
    """(user_id, product_id, event) of the private people's purchases, carts, favourites."""
    inter = dataset.interactions
    rows = inter[inter["event"].astype(str).isin(PRIVATE_EVENTS)]
    return rows[rows["user_id"].isin(private)][["user_id", "product_id", "event"]]


def followees(dataset: Dataset) -> dict[int, np.ndarray]:
    f = dataset.follows
    return {int(u): g.to_numpy(np.int64) for u, g in f.groupby("follower_id")["followee_id"]}


def exposure(dataset: Dataset, private: set[int]) -> pd.Series:
    """Per person: how many private buyers (of anything) they follow, most first."""
    buyers = set(private_buys(dataset, private)["user_id"].astype(int))
    f = dataset.follows
    exposed = f[f["followee_id"].isin(buyers)]
    return exposed.groupby("follower_id").size().sort_values(ascending=False, kind="stable")


def share_cases(dataset: Dataset, private: set[int], users) -> list[tuple[int, int, int]]:
    """(user, product, private followee who bought it) for each user who has one."""
    buys = private_buys(dataset, private)
    bought = buys[buys["event"].astype(str) == "purchase"].groupby("user_id")["product_id"]
    first_buy = {int(u): int(p.iloc[0]) for u, p in bought}
    cases = []
    graph = followees(dataset)
    for u in users:
        for f in graph.get(int(u), []):
            if int(f) in first_buy:
                cases.append((int(u), first_buy[int(f)], int(f)))
                break
    return cases


def public_buyers(dataset: Dataset) -> dict[int, set[int]]:
    """product -> people who share purchases and bought it."""
    users = dataset.users
    sharing = set(users.loc[users["share_purchases"], "user_id"].astype(int))
    inter = dataset.interactions
    buys = inter[(inter["event"].astype(str) == "purchase") & inter["user_id"].isin(sharing)]
    return {int(p): set(g.astype(int)) for p, g in buys.groupby("product_id")["user_id"]}


def check_share_targets(
    oracle: Oracle,
    where: str,
    body: dict,
    buyer: int | None,
    public: set[int],
    following: set[int],
) -> None:
    """A private buyer stays among the targets (leaving them out would tell the asker who
    bought the product); public buyers are left out (so the check has teeth)."""
    oracle.check(where, body)
    targets = {t["user_id"] for t in body["data"]}
    if body["count"] < 100 and len(following) <= 100:
        if buyer is not None and buyer not in targets:
            oracle.leaks.append(f"{where}: private buyer {buyer} left out of the targets")
        assert not targets & public, (where, targets & public)


# ---------------------------------------------------------------------- tiny
async def _scan_people(app, oracle: Oracle, dataset: Dataset, cases: dict, fallback: int) -> int:
    """Every person's recommendations, profile, following list and share targets, some
    groups and post lists, over HTTP (httpx straight to the ASGI app: the full request
    path without a test client's thread hop per request). Returns the requests sent."""
    users = dataset.users["user_id"].astype(int).tolist()
    buyers_of = public_buyers(dataset)
    graph = followees(dataset)
    sent = 0
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:

        async def get(path: str, **params) -> dict:
            nonlocal sent
            r = await http.get(path, params=params)
            sent += 1
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            body = r.json()
            oracle.check(path, body)
            return body

        async def scan(u: int) -> None:
            nonlocal sent
            async with lanes:
                await get(f"/v1/users/{u}/recommendations")
                await get(f"/v1/users/{u}")
                following = await get(f"/v1/users/{u}/following", limit=500)
                product, buyer = cases.get(u, (fallback, None))
                body = await get(f"/v1/users/{u}/share-targets", product_id=product, k=100)
                check_share_targets(
                    oracle,
                    f"share targets of {u} for {product}",
                    body,
                    buyer,
                    buyers_of.get(product, set()),
                    {f["user_id"] for f in following["data"]},
                )
                if u % 10 == 0:  # a group of the person and three people they follow
                    members = [u, *[int(f) for f in graph.get(u, [])[:3]]]
                    r = await http.post("/v1/groups/recommendations", json={"user_ids": members})
                    oracle.check(f"group {members}", r.json())
                    await get(f"/v1/demo/users/{u}/posts")
                    sent += 1

        lanes = asyncio.Semaphore(LANES)
        await asyncio.gather(*(scan(u) for u in users))
    return sent


def test_no_answer_reveals_a_private_purchase_tiny(tmp_path, make_settings, service_data):
    dataset = Dataset.load(service_data.dataset_dir)
    oracle = Oracle.of(dataset)
    users = dataset.users["user_id"].to_numpy(np.int64)
    cases = {u: (p, f) for u, p, f in share_cases(dataset, oracle.private, users)}
    graph = followees(dataset)
    private_list = sorted(oracle.private)
    public_list = [int(u) for u in users if int(u) not in oracle.private]
    with TestClient(create_app(make_settings(tmp_path))) as c:
        # Live purchases, carts and favourites of 40 private and 40 public people, of the
        # products their followers are most likely to be shown.
        popular = dataset.interactions["product_id"].value_counts().index[:40].astype(int)
        live = []
        for n, product in enumerate(popular):
            for who in (private_list[n], public_list[n]):
                event = PRIVATE_EVENTS[n % 3]
                live.append({"user_id": who, "product_id": int(product), "event": event})
                if who in oracle.private and event == "purchase":
                    for u, mine in graph.items():
                        if who in mine and u not in cases:
                            cases[u] = (int(product), who)
        assert c.post("/v1/events", json={"events": live}).status_code == 201
        requests = 1 + asyncio.run(_scan_people(c.app, oracle, dataset, cases, int(popular[0])))
        for gid in dataset.groups["group_id"].astype(int):
            r = c.post("/v1/groups/recommendations", json={"group_id": gid})
            oracle.check(f"group {gid}", r.json())
            requests += 1
        for path in ("/v1/demo/people", "/v1/demo/categories", "/v1/demo/config"):
            oracle.check(path, c.get(path).json())
            requests += 1
        oracle.check("groups", c.get("/v1/demo/groups", params={"limit": 200}).json())
        for handle in sorted(oracle.handles)[:50]:
            oracle.check(f"people {handle}", c.get("/v1/demo/people", params={"q": handle}).json())
        requests += 51
    assert oracle.leaks == [], oracle.leaks[:10]
    assert oracle.named_public > 1000  # the answers do name people for what they bought
    assert len(cases) > 500
    print(
        f"\nRELIABILITY privacy tiny: {len(users)} users ({len(oracle.private)} private), "
        f"{requests} requests, {oracle.reasons} reasons, {oracle.named_public} mentions of "
        f"public buyers, {len(cases)} share-target checks of a private buyer, 0 leaks"
    )


# --------------------------------------------------------------------- small
@dataclass(frozen=True)
class Trained:
    dataset_dir: Path
    model_dir: Path
    model: HybridRecommender


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Trained:
    """The ``small`` preset (10,000 people) saved, and the tests' quick hybrid trained on
    it (seconds: 200 training users for the ranker, small ALS)."""
    from synthetic_data import generate, make_config

    root = tmp_path_factory.mktemp("small")
    dataset = generate(make_config("small", seed=0))
    dataset.save(root / "data")
    model = fast_hybrid().fit(dataset)
    model.save(root / "model")
    (root / "model" / "dataset_path").write_text(str((root / "data").resolve()) + "\n")
    return Trained(root / "data", root / "model", model)


def test_no_answer_reveals_a_private_purchase_small(
    tmp_path, make_settings, small, monkeypatch
) -> None:
    settings = make_settings(tmp_path, model_dir=small.model_dir)
    # The app serves the model just trained (loading it again would rebuild its indexes).
    monkeypatch.setattr(model_holder, "load_model", lambda path, dataset: small.model)
    with TestClient(create_app(settings)) as c:
        holder = c.app.state.runtime.holder
        model, dataset = holder.model, holder.dataset
        oracle = Oracle.of(dataset)
        private = np.array(sorted(oracle.private))
        social = dict(zip(model.source_names_, model.sources_, strict=True))["social"]
        rows = social.users_.lookup(private)
        # Live purchases, carts, favourites of 300 private people, over HTTP.
        buys = private_buys(dataset, oracle.private)
        popular = dataset.interactions["product_id"].value_counts().index[:300].astype(int)
        live = [
            {"user_id": int(u), "product_id": int(p), "event": PRIVATE_EVENTS[n % 3]}
            for n, (u, p) in enumerate(zip(private[:300], popular, strict=True))
        ]
        assert c.post("/v1/events", json={"events": live}).status_code == 201

        # 1. Every person and every product: the social source's evidence of what people
        # bought or saved (fitted and live; what its scores, reasons and share targets
        # read) is empty for every private person, and not for the others.
        n_items = social.data_.n_items
        for component in ("friends_purchased", "friends_engaged"):
            evidence = social._evidence(component, None)
            assert evidence[rows].nnz == 0, component
            assert evidence.nnz > 0
        stacked = social.stacked_[rows][:, : 2 * n_items]
        deltas = social._delta_matrices()
        if deltas:
            stacked = sp.csr_array(stacked + deltas["stacked"][rows][:, : 2 * n_items])
            stacked.eliminate_zeros()
        assert stacked.nnz == 0
        users = dataset.users["user_id"].to_numpy(np.int64)
        cats = social._category_counts
        for kind in ("purchase", "engaged"):
            live_counts = [
                n for (k, u, _), n in social._live_cat.items() if k == kind and u in set(rows)
            ]
            assert cats[kind][rows].nnz == 0 and sum(live_counts) == 0, kind
        assert not social._co_engagement(rows, 0).any()

        # 2. The hybrid's reasons for the people most exposed to private buyers.
        exposed = exposure(dataset, oracle.private).index[:SAMPLE].to_numpy(np.int64)
        recs = model.recommend(exposed, k=10, explain=True)
        for u, reasons in zip(recs["user_id"], recs["reasons"], strict=True):
            oracle.check(f"recommendations of {u}", reasons)

        # 3. Share targets of theirs for a product a private followee of theirs bought.
        cases = share_cases(dataset, oracle.private, exposed)
        buyers_of = public_buyers(dataset)
        graph = followees(dataset)
        for u, product, buyer in cases:
            frame = model.share_targets(u, product, k=100)
            body = {"data": frame.to_dict("records"), "count": len(frame)}
            following = set(graph.get(u, np.zeros(0, np.int64)).tolist())
            check_share_targets(
                oracle,
                f"share targets of {u}",
                body,
                buyer,
                buyers_of.get(product, set()),
                following,
            )

        # 4. Every endpoint over HTTP for some of them.
        requests = 1
        for u, product, _ in cases[:HTTP_SAMPLE]:
            for path, params in [
                (f"/v1/users/{u}/recommendations", {}),
                (f"/v1/users/{u}/share-targets", {"product_id": product, "k": 100}),
                (f"/v1/users/{u}", {}),
                (f"/v1/users/{u}/following", {"limit": 500}),
                (f"/v1/demo/users/{u}/posts", {}),
            ]:
                oracle.check(path, c.get(path, params=params).json())
                requests += 1
            members = [u, *graph.get(u, [])[:4].tolist()]
            oracle.check(
                f"group {members}",
                c.post("/v1/groups/recommendations", json={"user_ids": members}).json(),
            )
            requests += 1
    assert oracle.leaks == [], oracle.leaks[:10]
    assert oracle.named_public > 1000
    assert len(cases) == SAMPLE and len(buys) > 0
    print(
        f"\nRELIABILITY privacy small: {len(users)} users ({len(private)} private) checked "
        f"in the model's evidence, {len(exposed)} users' hybrid reasons, {len(cases)} share-"
        f"target checks, {requests} HTTP requests, {oracle.reasons} reasons, 0 leaks"
    )

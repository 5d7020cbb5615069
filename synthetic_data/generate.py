"""``generate(config) -> Dataset``: run the stages in order, each with its own random stream."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pyarrow as pa

from recommender.dataset import Dataset
from synthetic_data import __version__
from synthetic_data.behaviour import World, simulate_behaviour
from synthetic_data.catalogue import make_catalogue
from synthetic_data.config import GeneratorConfig, validate_config
from synthetic_data.graph import make_follow_graph
from synthetic_data.groups import make_groups
from synthetic_data.posts import KINDS, make_posts
from synthetic_data.timeline import Timeline
from synthetic_data.users import make_users
from synthetic_data.vocab import load_vocabulary

STAGES = ("users", "follows", "groups", "catalogue", "posts", "behaviour", "assemble")

ProgressHook = Callable[[str, int, int], None]
"""Called as ``hook(stage, advance, total)``; ``total`` is the stage's number of steps."""


def generate(
    config: GeneratorConfig,
    *,
    progress: ProgressHook | None = None,
    timings: dict[str, float] | None = None,
) -> Dataset:
    """Generate a synthetic social-commerce dataset.

    Parameters
    ----------
    config : GeneratorConfig
        All knobs, including ``seed`` and ``lang``; see :func:`synthetic_data.make_config`.
    progress : callable, optional
        Progress hook ``(stage, advance, total)``, e.g. for a Rich progress bar.
    timings : dict, optional
        Filled with each stage's wall time in seconds (kept out of the manifest, so the
        same seed and configuration give byte-identical files).

    Returns
    -------
    Dataset
        The dataset with its ``ground_truth`` tables and manifest.
    """
    validate_config(config)
    hook = progress or (lambda stage, advance, total: None)
    timings = timings if timings is not None else {}
    vocab = load_vocabulary(config.lang)
    timeline = Timeline.from_config(config.start_date, config.n_days, config.signup_years)
    streams = dict(zip(STAGES, np.random.default_rng(config.seed).spawn(len(STAGES)), strict=True))

    @contextmanager
    def stage(name: str, total: int = 1) -> Iterator[None]:
        hook(name, 0, total)
        start = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - start
        if total == 1:
            hook(name, 1, total)

    with stage("users"):
        users = make_users(config, vocab, timeline, rng=streams["users"])
    with stage("follows"):
        graph = make_follow_graph(config, users, timeline, rng=streams["follows"])
    with stage("groups"):
        groups = make_groups(config, vocab, users, rng=streams["groups"])
    with stage("catalogue"):
        catalogue = make_catalogue(config, vocab, rng=streams["catalogue"])
    with stage("posts"):
        posts = make_posts(config, vocab, users, graph, catalogue, timeline, rng=streams["posts"])
    world = World(config, vocab, timeline, users, graph, catalogue, posts)
    with stage("behaviour", total=config.n_days):
        behaviour = simulate_behaviour(
            world, rng=streams["behaviour"], progress=lambda k: hook("behaviour", k, config.n_days)
        )
    with stage("assemble"):
        posts_frame = _posts_frame(posts, behaviour.showoff_posts, timeline)
        ground_truth = _ground_truth(world, behaviour, posts_frame)
        manifest = {
            "name": f"synthetic-{config.lang}-n{config.n_users}-seed{config.seed}",
            "generator": {"name": "socialcart.synthetic_data", "version": __version__},
            "config": config.to_dict(),
            "seed": config.seed,
            "time_span": timeline.span(),
        }
        dataset = Dataset(
            users=users.frame,
            follows=graph.frame(timeline),
            posts=posts_frame,
            products=catalogue.frame,
            interactions=behaviour.interactions,
            groups=groups.frame,
            group_members=groups.members,
            ground_truth=ground_truth,
            manifest=manifest,
        )
    return dataset


def _posts_frame(posts, showoff: pd.DataFrame, timeline: Timeline) -> pd.DataFrame:
    """Organic posts and the behaviour stage's show-off posts as one table."""
    organic = posts.frame(timeline)
    if showoff.empty:
        return organic
    n = len(showoff)
    extra = pd.DataFrame(
        {
            "post_id": showoff["post_id"].to_numpy(np.int64),
            "user_id": showoff["user_id"].to_numpy(np.int64),
            "created_ts": timeline.to_timestamps(showoff["created_us"].to_numpy()),
            "text": pd.Series(
                pd.arrays.ArrowExtensionArray(pa.array(showoff["text"], pa.string()))
            ),
            "hashtags": pd.Series(
                pd.arrays.ArrowExtensionArray(pa.array([[]] * n, pa.list_(pa.string())))
            ),
            "mentions": pd.Series(
                pd.arrays.ArrowExtensionArray(pa.array([[]] * n, pa.list_(pa.int64())))
            ),
            "repost_of": pd.Series(pd.array([None] * n, dtype=pd.ArrowDtype(pa.int64()))),
            "product_id": pd.Series(
                pd.array(showoff["product_id"].to_numpy(np.int64), dtype=pd.ArrowDtype(pa.int64()))
            ),
        }
    )
    organic = organic.astype(
        {"repost_of": pd.ArrowDtype(pa.int64()), "product_id": pd.ArrowDtype(pa.int64())}
    )
    return pd.concat([organic, extra], ignore_index=True)


def _ground_truth(world: World, behaviour, posts_frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    users, vocab, cat, tl = world.users, world.vocab, world.catalogue, world.timeline
    n_per_user = np.diff(users.interest_indptr)
    interests = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(users.n, dtype=np.int64), n_per_user),
            "category_path": np.asarray(vocab.leaves, dtype=object)[users.interest_leaf],
            "weight": users.interest_weight,
        }
    )
    has_event = users.event >= 0
    event_start = tl.day_start(users.event_day[has_event])
    life_events = pd.DataFrame(
        {
            "user_id": np.flatnonzero(has_event).astype(np.int64),
            "event": np.asarray(vocab.events, dtype=object)[users.event[has_event]],
            "start_ts": tl.to_timestamps(event_start),
            "end_ts": tl.to_timestamps(event_start + world.config.life_event_days * 86_400_000_000),
        }
    )
    products = pd.DataFrame(
        {
            "product_id": np.arange(cat.n, dtype=np.int64),
            "appeal": cat.appeal,
            "leaf": np.asarray(vocab.leaves, dtype=object)[cat.leaf],
        }
    )
    kinds = np.concatenate([world.posts.kind, behaviour.showoff_posts["kind"].to_numpy()])
    post_kinds = pd.DataFrame(
        {
            "post_id": posts_frame["post_id"].to_numpy(np.int64),
            "kind": np.asarray(KINDS, dtype=object)[kinds],
        }
    )
    users_latent = pd.DataFrame(
        {
            "user_id": np.arange(users.n, dtype=np.int64),
            "activity": users.activity,
            "price_offset": users.price_offset,
            "community": np.asarray(vocab.leaves, dtype=object)[users.community],
        }
    )
    event_leaves = pd.DataFrame(
        {
            "event": np.repeat(
                np.asarray(vocab.events, dtype=object), [len(x) for x in vocab.event_leaves]
            ),
            "category_path": np.asarray(vocab.leaves, dtype=object)[
                np.concatenate(vocab.event_leaves)
            ],
        }
    )
    return {
        "life_event_leaves": event_leaves,
        "user_interests": interests,
        "user_life_events": life_events,
        "purchase_causes": behaviour.purchase_causes,
        "product_appeal": products,
        "post_kinds": post_kinds,
        "user_latent": users_latent,
    }

"""Small hand-made datasets whose every row is known, for tests across the project."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from recommender.dataset import Dataset

START = pd.Timestamp("2024-03-01", tz="UTC")
END = pd.Timestamp("2024-03-31 23:59:59", tz="UTC")


def _at(day: int, hour: int = 12) -> pd.Timestamp:
    """A moment ``day`` days and ``hour`` hours after the start of the time span."""
    return START + pd.Timedelta(days=day, hours=hour)


def _timestamps(*moments: pd.Timestamp) -> pd.Series:
    return pd.Series(moments, dtype="datetime64[us, UTC]")


def _optional_ids(*ids: int | None) -> pd.Series:
    # Nullable id columns load as Arrow-backed int64 (exact ids next to nulls), so build them
    # that way and a save/load round trip compares equal.
    return pd.Series(pa.array(ids, pa.int64()), dtype=pd.ArrowDtype(pa.int64()))


def _lists(values: list, value_type: pa.DataType) -> pd.Series:
    # List columns load as Arrow-backed lists.
    return pd.Series(
        pa.array(values, pa.list_(value_type)), dtype=pd.ArrowDtype(pa.list_(value_type))
    )


def make_valid_dataset() -> Dataset:
    """A tiny valid dataset: 6 users, 7 follows, 4 posts, 5 products, 12 events, 2 groups.

    Users 1-6: user 2 (``lin_kol``) is the KOL whom users 1, 3 and 4 follow; users 1 and 3
    follow each other (a friendship); user 3 (``jun``) has ``share_purchases=False``.
    Post 201 by the KOL links product 101; post 202 by user 1 mentions the KOL; post 203 by
    user 3 reposts 201; post 204 by user 4 shows off product 103. Every event type occurs;
    users 1 and 3 reach product 101 through post 201 and both buy it (user 3 privately).
    Group 1 ("Summer shred") holds users 1, 2 and 3; group 2 ("Weekend runners") users 1
    and 4. The ground truth ``user_interests`` gives each user's planted interest weights.
    Every timestamp lies inside the manifest's ``time_span`` (March 2024, UTC).
    """
    users = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 5, 6],
            "handle": ["mei", "lin_kol", "jun", "xiao", "hao", "ying"],
            "gender": ["female", "female", "male", "female", "male", "unknown"],
            "age_band": ["25-34", "25-34", "18-24", "35-44", "45+", "unknown"],
            "city_tier": [1, 1, 2, 3, 0, 5],
            "device": ["mobile", "mobile", "desktop", "mobile", "unknown", "mobile"],
            "is_kol": [False, True, False, False, False, False],
            "share_purchases": [True, True, False, True, True, True],
            "signup_ts": _timestamps(START, _at(0, 1), _at(0, 2), _at(1), _at(2), _at(3)),
        }
    )
    follows = pd.DataFrame(
        {
            "follower_id": [1, 3, 4, 1, 3, 5, 6],
            "followee_id": [2, 2, 2, 3, 1, 4, 1],
            "created_ts": _timestamps(
                _at(1), _at(1, 14), _at(2), _at(3), _at(3, 18), _at(4), _at(5)
            ),
        }
    )
    posts = pd.DataFrame(
        {
            "post_id": [201, 202, 203, 204],
            "user_id": [2, 1, 3, 4],
            "created_ts": _timestamps(_at(6), _at(7), _at(7, 20), _at(9)),
            "text": [
                "Meal replacement shakes that actually work #weightloss #summer",
                "Lose 5kg before summer with @lin_kol #weightloss",
                "",
                "My new running shoes arrived #running",
            ],
            "hashtags": _lists(
                [["weightloss", "summer"], ["weightloss"], [], ["running"]], pa.string()
            ),
            "mentions": _lists([[], [2], [], []], pa.int64()),
            "repost_of": _optional_ids(None, None, 201, None),
            "product_id": _optional_ids(101, None, None, 103),
        }
    )
    products = pd.DataFrame(
        {
            "product_id": [101, 102, 103, 104, 105],
            "shop_id": [11, 11, 12, 13, 13],
            "category_path": [
                "Health/Weight loss/Meal replacement",
                "Health/Weight loss/Tea",
                "Sports/Running/Shoes",
                "Beauty/Skincare/Sunscreen",
                "Beauty/Skincare/Serum",
            ],
            "title": [
                "Chocolate meal replacement shake, 12 servings",
                "Slimming oolong tea",
                "Lightweight running shoes",
                "SPF50 sunscreen 60ml",
                "Vitamin C serum 30ml",
            ],
            "description": [
                "High protein, low sugar.",
                "Loose-leaf oolong, 250g.",
                "Breathable mesh upper.",
                "Water resistant, for daily use.",
                "Brightening serum.",
            ],
            "brand": ["SlimCo", "TeaHouse", "Swift", "SunGuard", "Glow"],
            "price": [129.0, 39.9, 499.0, 89.0, 159.5],
        }
    )
    interactions = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 1, 3, 3, 4, 4, 5, 6, 2],
            "product_id": [101, 101, 101, 101, 101, 101, 101, 103, 103, 104, 105, 102],
            "event": [
                "view",
                "click",
                "favorite",
                "cart",
                "purchase",
                "view",
                "purchase",
                "view",
                "purchase",
                "view",
                "click",
                "cart",
            ],
            "ts": _timestamps(
                _at(7, 9),
                _at(7, 10),
                _at(7, 11),
                _at(8),
                _at(8, 13),
                _at(10),
                _at(10, 1),
                _at(8, 21),
                _at(8, 22),
                _at(20),
                _at(25),
                _at(29, 23),
            ),
            "via_post_id": _optional_ids(
                201, 201, 201, 201, 201, 201, 201, None, None, None, None, None
            ),
        }
    )
    groups = pd.DataFrame(
        {
            "group_id": [1, 2],
            "name": ["Summer shred", "Weekend runners"],
            "topic": ["Health/Weight loss", "Sports/Running"],
        }
    )
    group_members = pd.DataFrame({"group_id": [1, 1, 1, 2, 2], "user_id": [1, 2, 3, 1, 4]})
    user_interests = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 3, 4, 5, 6],
            "category": [
                "Health/Weight loss",
                "Sports/Running",
                "Health/Weight loss",
                "Health/Weight loss",
                "Sports/Running",
                "Beauty/Skincare",
                "Beauty/Skincare",
            ],
            "weight": [0.7, 0.3, 1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    manifest = {
        "generator": {"name": "tests.recommender.factories", "version": "1"},
        "config": {"preset": "hand-made", "n_users": 6, "n_products": 5},
        "seed": 0,
        "time_span": {"start": START.isoformat(), "end": END.isoformat()},
    }
    return Dataset(
        users=users,
        follows=follows,
        posts=posts,
        products=products,
        interactions=interactions,
        groups=groups,
        group_members=group_members,
        ground_truth={"user_interests": user_interests},
        manifest=manifest,
    )

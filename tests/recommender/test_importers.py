"""Tests for :mod:`recommender.importers`, :mod:`recommender.importers_lastfm` and the
``socialcart import`` commands, on small files written into ``tmp_path`` (and, when the
shared copy is present, on the real LastFM HetRec 2011 data).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recommender.dataset import Dataset
from recommender.errors import DatasetError
from recommender.importers import SYNTHETIC_TS, CsvColumns, import_csv

LASTFM = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "lastfm-hetrec2011"


def write(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A tiny social-commerce export: 3 users, 3 items, a friendship, tags."""
    return {
        # user 1 bought item 10 twice (weights summed, earliest time kept).
        "interactions": write(
            tmp_path / "interactions.csv",
            """
user,item,weight,ts
1,10,2,2021-03-02T10:00:00Z
1,10,3,2021-03-01T09:00:00Z
1,11,1,2021-03-05T00:00:00Z
2,11,4,2021-03-03T00:00:00Z
3,12,1,2021-03-04T00:00:00Z
""",
        ),
        "social": write(tmp_path / "social.tsv", "user\tfriend\n1\t2\n2\t1\n3\t3\n2\t3\n"),
        "items": write(
            tmp_path / "items.csv",
            """
item,title,description,category
10,Red dress,A summer dress,Women/Dresses
11,Running shoes,,
12,Tea set,Porcelain,Home/Kitchen
13,Unsold lamp,,Home/Lighting
""",
        ),
        "item_tags": write(
            tmp_path / "tags.csv",
            """
user,item,tag,ts
1,11,running,2021-02-01
1,11,sport,2021-02-01
2,11,running,2021-02-03
1,99,ghost,2021-02-05
,12,tea,
""",
        ),
    }


def test_import_csv_maps_every_table_to_the_contract(files, tmp_path):
    ds = import_csv(**files, out=tmp_path / "ds")
    users = ds.users.set_index("user_id")
    assert list(users.index) == [1, 2, 3]
    assert list(users["handle"]) == ["u1", "u2", "u3"]
    assert set(users["gender"]) == set(users["age_band"]) == set(users["device"]) == {"unknown"}
    assert (users["city_tier"] == 0).all() and not users["is_kol"].any()
    assert users["share_purchases"].all()

    # Undirected friendships: 1-2 (listed twice), 2-3 -> 4 follows; the self-loop is dropped.
    pairs = set(zip(ds.follows["follower_id"], ds.follows["followee_id"], strict=True))
    assert pairs == {(1, 2), (2, 1), (2, 3), (3, 2)}

    products = ds.products.set_index("product_id")
    assert list(products.index) == [10, 11, 12, 13]
    assert products.loc[10, "category_path"] == "Women/Dresses"
    assert products.loc[11, "category_path"] == "Imported"
    # No description in the file: the item's most used tags, most used first.
    assert products.loc[11, "description"] == "running sport"
    assert products["price"].isna().all() and (products["shop_id"] == 0).all()
    assert (products["brand"] == "").all()

    inter = ds.interactions.set_index(["user_id", "product_id"])
    assert len(inter) == 4 and set(inter["event"]) == {"purchase"}
    assert inter.loc[(1, 10), "weight"] == 5
    assert inter.loc[(1, 10), "ts"] == pd.Timestamp("2021-03-01T09:00:00Z")

    # Posts: user 1 on item 11 (2 tags, one day), user 2 on 11, user 1 on unknown item 99.
    posts = ds.posts.sort_values("post_id")
    assert len(posts) == 3
    first = posts.iloc[0]
    assert first["user_id"] == 1 and first["text"] == "running sport"
    assert list(first["hashtags"]) == ["running", "sport"]
    assert int(first["product_id"]) == 11
    assert posts["product_id"].isna().sum() == 1  # item 99 is not a product

    assert ds.manifest["time_span"]["start"] == "2021-02-01T00:00:00+00:00"
    assert "split" not in ds.manifest
    reloaded = Dataset.load(tmp_path / "ds")
    assert len(reloaded.interactions) == 4
    assert list(reloaded.interactions.columns)[-1] == "weight"


def test_rows_without_time_get_the_synthetic_date(tmp_path):
    inter = write(tmp_path / "i.csv", "user,item\n5,7\n5,8\n")
    ds = import_csv(interactions=inter)
    assert (ds.interactions["ts"] == SYNTHETIC_TS).all()
    assert ds.manifest["timestamps"]["synthetic"] == "2000-01-01T00:00:00+00:00"
    assert ds.manifest["timestamps"]["undated_interactions"] == 2
    assert "weight" not in ds.interactions.columns
    assert list(ds.products["title"]) == ["item 7", "item 8"]


def test_string_ids_are_numbered_and_kept_as_external_ids(tmp_path):
    inter = write(tmp_path / "i.tsv", "uid\tsku\nbob\tB-2\nalice\tA-1\nbob\tA-1\n")
    social = write(tmp_path / "s.tsv", "user\tfriend\ncarol\talice\n")
    ds = import_csv(
        interactions=inter,
        social=social,
        columns=CsvColumns(user="uid", item="sku"),
        social_directed=True,
    )
    assert list(ds.users["external_id"]) == ["alice", "bob", "carol"]
    assert list(ds.users["user_id"]) == [0, 1, 2]
    assert list(ds.products["external_id"]) == ["A-1", "B-2"]
    assert list(zip(ds.follows["follower_id"], ds.follows["followee_id"], strict=True)) == [(2, 0)]


def test_separator_and_latin1_encoding_are_detected(tmp_path):
    inter = write(tmp_path / "i.txt", "user|item\n1|7\n")
    items = tmp_path / "items.txt"
    items.write_bytes("item;title\n7;Beyonc\xe9\n".encode("latin-1"))
    ds = import_csv(interactions=inter, items=items)
    assert ds.products["title"].tolist() == ["Beyonc\xe9"]


def test_event_column_is_mapped_and_unknown_events_fail(tmp_path):
    inter = write(
        tmp_path / "e.csv", "user,item,action,ts\n1,2,pv,1614556800\n1,2,buy,1614556900\n"
    )
    ds = import_csv(
        interactions=inter,
        columns=CsvColumns(event="action"),
        event_map={"pv": "view", "buy": "purchase"},
    )
    assert list(ds.interactions["event"]) == ["view", "purchase"]
    assert ds.interactions["ts"].iloc[0] == pd.Timestamp("2021-03-01T00:00:00Z")
    with pytest.raises(DatasetError, match=r"event values \['pv'\]"):
        import_csv(
            interactions=inter, columns=CsvColumns(event="action"), event_map={"buy": "cart"}
        )


def test_fixed_split_through_reindex_maps(files, tmp_path):
    write(tmp_path / "users.json", json.dumps({"1": 0, "2": 1, "3": 2}))
    write(tmp_path / "items.json", json.dumps({"10": 0, "11": 1, "12": 2}))
    train = write(tmp_path / "train.txt", "user,item\n0,0\n1,1\n2,2\n")
    test = write(tmp_path / "test.txt", "user,item\n0,1\n")
    ds = import_csv(
        interactions=files["interactions"],
        split_train=train,
        split_test=test,
        split_user_map=tmp_path / "users.json",
        split_item_map=tmp_path / "items.json",
    )
    split = ds.interactions.set_index(["user_id", "product_id"])["split"]
    assert split.to_dict() == {
        (1, 10): "train",
        (1, 11): "test",
        (2, 11): "train",
        (3, 12): "train",
    }
    assert ds.manifest["split"] == "fixed"


def test_leaky_or_incomplete_split_is_refused(files, tmp_path):
    train = write(tmp_path / "train.csv", "user,item\n1,10\n1,11\n2,11\n3,12\n")
    leaky = write(tmp_path / "leaky.csv", "user,item\n1,11\n")
    with pytest.raises(DatasetError, match="leaky split"):
        import_csv(interactions=files["interactions"], split_train=train, split_test=leaky)
    partial = write(tmp_path / "partial.csv", "user,item\n1,10\n")
    with pytest.raises(DatasetError, match="in neither split file"):
        import_csv(interactions=files["interactions"], split_train=partial, split_test=leaky)


def test_missing_file_and_missing_column_are_clear_errors(files, tmp_path):
    with pytest.raises(FileNotFoundError, match="social file"):
        import_csv(interactions=files["interactions"], social=tmp_path / "nope.csv")
    with pytest.raises(DatasetError, match="has no column 'customer'"):
        import_csv(interactions=files["interactions"], columns=CsvColumns(user="customer"))
    # An optional column renamed from its default must exist.
    with pytest.raises(DatasetError, match="has no column 'plays'"):
        import_csv(interactions=files["interactions"], columns=CsvColumns(weight="plays"))


def test_cli_import_csv_and_its_errors(files, tmp_path):
    from socialcart.cli import app

    runner = CliRunner()
    out = tmp_path / "cli-ds"
    base = ["import", "csv", "--interactions", str(files["interactions"])]
    args = base + ["--social", str(files["social"]), "--social-directed", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    reloaded = Dataset.load(out)
    assert len(reloaded.interactions) == 4
    assert len(reloaded.follows) == 3  # directed: 1->2, 2->1, 2->3 (self-loop dropped)

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output

    missing = runner.invoke(app, base + ["--out", str(tmp_path / "x"), "--user-col", "customer"])
    assert missing.exit_code == 2
    assert "no column 'customer'" in missing.output

    nope = ["import", "csv", "--interactions", str(tmp_path / "nope.csv"), "--out", str(out)]
    no_file = runner.invoke(app, nope + ["--force"])
    assert no_file.exit_code == 2 and "does not exist" in no_file.output


@pytest.mark.skipif(not LASTFM.is_dir(), reason=f"LastFM data not found at {LASTFM}")
def test_lastfm_recipe_on_the_real_data(tmp_path):
    from recommender.importers_lastfm import import_lastfm_hetrec

    ds = import_lastfm_hetrec(LASTFM, out=tmp_path / "lastfm")
    assert len(ds.users) == 1892
    assert len(ds.products) == 17632
    assert len(ds.follows) == 25434
    assert len(ds.interactions) == 92834
    assert ds.interactions["split"].value_counts().to_dict() == {"train": 74267, "test": 18567}
    assert ds.manifest["split"] == "fixed"
    assert set(ds.products["category_path"]) == {"Music/Artists"}
    assert ds.interactions["weight"].sum() == 69_183_975  # total listens in user_artists.dat
    assert ds.posts["created_ts"].min() >= pd.Timestamp("2005-01-01", tz="UTC")
    reloaded = Dataset.load(tmp_path / "lastfm")
    assert np.array_equal(
        reloaded.interactions["split"].to_numpy(), ds.interactions["split"].to_numpy()
    )

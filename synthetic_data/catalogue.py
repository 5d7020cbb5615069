"""Stage 4: the Taobao-like catalogue — category tree, shops, brands, titles, prices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic_data.config import GeneratorConfig
from synthetic_data.sampling import segment_cdf
from synthetic_data.vocab import Vocabulary


@dataclass
class Catalogue:
    """The products table plus per-product latent state (index = product id)."""

    frame: pd.DataFrame
    leaf: np.ndarray
    price: np.ndarray
    appeal: np.ndarray
    """Heavy-tailed latent appeal: why a few products sell far more than the rest."""
    leaf_indptr: np.ndarray
    """Products are numbered leaf by leaf: leaf ``l`` holds ids ``leaf_indptr[l]..[l+1]``."""
    leaf_cdf: np.ndarray
    """Per-leaf appeal CDF for :func:`synthetic_data.sampling.sample_segments`."""
    noun: np.ndarray
    """What the product is, in a word or two ("yoga mat"), for posts that mention it."""

    @property
    def n(self) -> int:
        return len(self.leaf)


def make_catalogue(
    config: GeneratorConfig, vocab: Vocabulary, *, rng: np.random.Generator
) -> Catalogue:
    """Draw ``config.n_products`` products over the category tree."""
    size_rng, shop_rng, text_rng, price_rng = rng.spawn(4)
    per_leaf = _products_per_leaf(config.n_products, vocab, size_rng)
    leaf = np.repeat(np.arange(vocab.n_leaves), per_leaf)
    n = len(leaf)
    leaf_indptr = np.concatenate([[0], np.cumsum(per_leaf)])
    appeal = price_rng.lognormal(0.0, config.popularity_sigma, n)
    log_price = (
        np.log(vocab.price_median[leaf]) + price_rng.normal(0, 1, n) * vocab.price_sigma[leaf]
    )
    price = _shop_price(np.exp(log_price))
    shop_id, shop_name, brand = _shops(config, vocab, leaf, shop_rng)
    title, description, noun = _texts(vocab, leaf, brand, text_rng)
    frame = pd.DataFrame(
        {
            "product_id": np.arange(n, dtype=np.int64),
            "shop_id": shop_id,
            "category_path": np.asarray(vocab.leaves, dtype=object)[leaf],
            "title": title,
            "description": description,
            "brand": brand,
            "price": price,
            "shop_name": shop_name,
        }
    )
    return Catalogue(
        frame=frame,
        leaf=leaf,
        price=price,
        appeal=appeal,
        leaf_indptr=leaf_indptr,
        leaf_cdf=segment_cdf(leaf_indptr, appeal),
        noun=noun,
    )


def _products_per_leaf(n_products: int, vocab: Vocabulary, rng) -> np.ndarray:
    """Bigger categories hold more products; every leaf holds at least a few."""
    share = vocab.popularity**0.7 * rng.lognormal(0, 0.2, vocab.n_leaves)
    share /= share.sum()
    minimum = 3 if n_products >= 3 * vocab.n_leaves else 1
    counts = np.maximum(np.floor(share * n_products).astype(np.int64), minimum)
    # Give the remainder (or take the excess) from the largest leaves.
    diff = n_products - counts.sum()
    order = np.argsort(-share)
    i = 0
    while diff != 0:
        leaf = order[i % len(order)]
        if diff > 0 or counts[leaf] > minimum:
            step = 1 if diff > 0 else -1
            counts[leaf] += step
            diff -= step
        i += 1
    return counts


def _shop_price(raw: np.ndarray) -> np.ndarray:
    """Prices as shops set them: ``x9.9`` above ¥20, one decimal below."""
    return np.where(raw >= 20, np.maximum(np.round(raw) - 0.1, 0.9), np.round(raw, 1).clip(0.9))


def _shops(config, vocab, leaf, rng):
    """Shops specialise in one top-level category and stock several of its brands."""
    n = len(leaf)
    top = vocab.leaf_top[leaf]
    n_tops = len(vocab.top_levels)
    per_top = np.bincount(top, minlength=n_tops)
    shops_per_top = np.maximum(np.round(per_top / config.products_per_shop), 1).astype(np.int64)
    shop_offset = np.concatenate([[0], np.cumsum(shops_per_top)])
    shop_id = shop_offset[top] + np.floor(rng.random(n) * shops_per_top[top]).astype(np.int64)
    brand_idx = rng.integers(0, 1 << 30, n)
    brand = np.array(
        [
            vocab.words[lf].brands[b % len(vocab.words[lf].brands)]
            for lf, b in zip(leaf, brand_idx, strict=True)
        ],
        dtype=object,
    )
    # A shop is named after the first brand it stocks.
    templates = vocab.general["shop_templates"]
    n_shops = int(shop_offset[-1])
    first_brand = pd.Series(brand).groupby(shop_id).first()
    names = {
        s: templates[s % len(templates)].format(brand=first_brand.get(s, "Taobao"))
        for s in range(n_shops)
        if s in first_brand.index
    }
    shop_name = np.array([names[s] for s in shop_id], dtype=object)
    return shop_id.astype(np.int64), shop_name, brand


def _texts(vocab, leaf, brand, rng):
    n = len(leaf)
    g = vocab.general
    picks = rng.integers(0, 1 << 30, size=(n, 7))
    titles, descriptions, nouns = [], [], []
    for i in range(n):
        w = vocab.words[leaf[i]]
        p = picks[i]
        noun = w.nouns[p[0] % len(w.nouns)]
        nouns.append(noun)
        adjective = w.adjectives[p[1] % len(w.adjectives)]
        extra = g["title_extras"][p[2] % len(g["title_extras"])]
        titles.append(
            g["title_templates"][p[3] % len(g["title_templates"])].format(
                brand=brand[i], adjective=adjective, noun=noun, extra=extra
            )
        )
        f1 = w.features[p[4] % len(w.features)]
        f2 = w.features[(p[4] + 1 + p[5] % max(len(w.features) - 1, 1)) % len(w.features)]
        descriptions.append(
            g["description_templates"][p[6] % len(g["description_templates"])].format(
                brand=brand[i], noun=noun, adjective=adjective, feature=f1, feature2=f2, leaf=w.name
            )
        )
    as_array = lambda x: np.array(x, dtype=object)  # noqa: E731
    return as_array(titles), as_array(descriptions), as_array(nouns)

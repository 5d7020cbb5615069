"""Text features for English and Chinese: one analyzer, TF-IDF from arrays, readable matches.

scikit-learn's default word tokenizer takes a run of Chinese characters for one word
("夏天之前一定要瘦下来" is a single token), so Chinese posts would never match product text.
:func:`analyze` splits text into Latin words (uni- and bigrams, English stop words and bare
numbers dropped) and runs of CJK characters (character n-grams, by default uni- and bigrams),
which serves either language and mixed text ("618特惠") alike.

The analyzer is a module-level function configured with :func:`functools.partial`, so a
fitted vectorizer is rebuilt from two arrays (:func:`tfidf_from_arrays`) instead of a pickle.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import partial

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
"""Kana, CJK ideographs (with extension A and compatibility) and Hangul."""

_WORD = re.compile(rf"[^\W_{CJK}]+")
_CJK_RUN = re.compile(rf"[{CJK}]+")
# An @handle runs to the next space or punctuation; handles are names, not topics.
_MENTION = re.compile(r"@[^\s,.!?;:，。！？；：、]+")
# Weibo writes "#tag#", others "#tag"; both are dropped from excerpts.
_HASHTAG = re.compile(r"#[^#\s]+#?")


def normalise(text: str) -> str:
    """NFKC (full-width to half-width), lower case, @mentions removed."""
    return _MENTION.sub(" ", unicodedata.normalize("NFKC", text).lower())


def analyze(
    text: str,
    *,
    word_ngram_range: tuple[int, int] = (1, 2),
    cjk_ngram_range: tuple[int, int] = (1, 2),
) -> list[str]:
    """Terms of ``text``: Latin word n-grams and CJK character n-grams.

    Words are runs of letters and digits of at least two characters that are neither an
    English stop word nor a bare number; word n-grams join consecutive kept words (as
    scikit-learn's word analyzer does). Each CJK run gives its own character n-grams.

    Examples
    --------
    >>> analyze("Trying to lose weight #减肥#")
    ['trying', 'lose', 'weight', 'trying lose', 'lose weight', '减', '肥', '减肥']
    """
    text = normalise(text)
    words = [
        w
        for w in _WORD.findall(text)
        if len(w) > 1 and w not in ENGLISH_STOP_WORDS and not w.isdigit()
    ]
    terms = _ngrams(words, word_ngram_range, " ")
    for run in _CJK_RUN.findall(text):
        terms.extend(_ngrams(run, cjk_ngram_range, ""))
    return terms


def _ngrams(seq, ngram_range: tuple[int, int], sep: str) -> list:
    lo, hi = ngram_range
    out = list(seq) if lo == 1 else []
    for n in range(max(lo, 2), min(hi, len(seq)) + 1):
        if n == 2:  # the common case, without a join per pair
            out.extend(f"{a}{sep}{b}" for a, b in zip(seq, seq[1:], strict=False))
        else:
            out.extend(sep.join(seq[i : i + n]) for i in range(len(seq) - n + 1))
    return out


def make_vectorizer(
    *,
    word_ngram_range: tuple[int, int] = (1, 2),
    cjk_ngram_range: tuple[int, int] = (1, 2),
    **tfidf_params,
) -> TfidfVectorizer:
    """An unfitted ``TfidfVectorizer`` using :func:`analyze` (sublinear tf, float32, L2)."""
    analyzer = partial(
        analyze,
        word_ngram_range=tuple(word_ngram_range),
        cjk_ngram_range=tuple(cjk_ngram_range),
    )
    params = {"sublinear_tf": True, "dtype": np.float32, **tfidf_params}
    return TfidfVectorizer(analyzer=analyzer, **params)


def tfidf_from_arrays(
    vocabulary: np.ndarray,
    idf: np.ndarray,
    *,
    word_ngram_range: tuple[int, int] = (1, 2),
    cjk_ngram_range: tuple[int, int] = (1, 2),
) -> TfidfVectorizer:
    """A fitted vectorizer rebuilt from its terms (column order) and idf weights.

    ``transform`` of the result equals that of the vectorizer the arrays came from.
    """
    vocabulary = [str(t) for t in vocabulary]
    vectorizer = make_vectorizer(
        word_ngram_range=word_ngram_range,
        cjk_ngram_range=cjk_ngram_range,
        vocabulary={t: i for i, t in enumerate(vocabulary)},
    )
    vectorizer.fit(vocabulary)  # fixes the vocabulary; the idf is replaced below
    vectorizer.idf_ = np.asarray(idf, dtype=np.float64)
    return vectorizer


def excerpt(text: str, limit: int = 60) -> str:
    """The post as a person would quote it: hashtags and extra spaces dropped, shortened."""
    short = " ".join(_HASHTAG.sub(" ", text).split()) or " ".join(text.split())
    if len(short) <= limit:
        return short
    cut = short[:limit]
    if " " in cut and not _CJK_RUN.search(cut[-1]):
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:，。；：") + "…"


def readable_words(
    weights: Mapping[str, float],
    text: str,
    other: str | None = None,
    n: int = 5,
    *,
    min_share: float = 0.25,
) -> list[str]:
    """The ``n`` strongest shared terms as words a person recognises.

    Terms weighing less than ``min_share`` of the strongest are left out (a stray
    character such as "一" explains nothing). CJK character n-grams that overlap or touch
    in ``text`` are merged into the word written there ("瘦身" and "身茶" become "瘦身茶",
    worth the sum of both) when that word is in ``other`` too (the text matched against),
    so every word is shared by both. A term inside a stronger word is left out.
    """
    floor = min_share * max(weights.values(), default=0.0)
    strong = {t: w for t, w in weights.items() if w >= floor}
    words = _merge_cjk(strong, normalise(text), None if other is None else normalise(other))
    chosen: list[str] = []
    for word in sorted(words, key=lambda w: (-words[w], w)):
        if any(_contains(c, word) for c in chosen):
            continue
        inside = [i for i, c in enumerate(chosen) if _contains(word, c)]
        if inside:  # the longer word takes the place of the strongest part
            chosen[inside[0]] = word
            chosen = [c for i, c in enumerate(chosen) if i not in inside[1:]]
        else:
            chosen.append(word)
        if len(chosen) == n:
            break
    return chosen


def _merge_cjk(weights: Mapping[str, float], text: str, other: str | None) -> dict[str, float]:
    words: dict[str, float] = {}
    spans: list[tuple[int, int, str, float]] = []
    for term, weight in weights.items():
        found = _CJK_RUN.fullmatch(term) and [
            (m.start(), m.start() + len(term), term, float(weight))
            for m in re.finditer(re.escape(term), text)
        ]
        if found:
            spans.extend(found)
        else:
            words[term] = words.get(term, 0.0) + float(weight)
    spans.sort()
    group: list[tuple[int, int, str, float]] = []
    for span in [*spans, (len(text) + 1, 0, "", 0.0)]:
        if group and span[0] > max(end for _, end, _, _ in group):
            start, end = group[0][0], max(e for _, e, _, _ in group)
            parts = dict((t, w) for _, _, t, w in group)
            word = text[start:end]
            if other is None or word in other or len(parts) == 1:
                parts = {word: sum(parts.values())}
            for term, weight in parts.items():
                words[term] = max(words.get(term, 0.0), weight)
            group = []
        group.append(span)
    return words


def _contains(word: str, part: str) -> bool:
    """Whether ``part`` is inside ``word``: as a substring for CJK, as whole words else."""
    if _CJK_RUN.fullmatch(part):
        return part in word
    return f" {part} " in f" {word} "

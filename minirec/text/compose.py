"""Compose the input text of a text encoder for one news article."""

from __future__ import annotations

import math
from typing import Any, Protocol, Sequence

import numpy as np

# Strings that pandas writes for a missing cell when a column is turned into str
# (`astype(str)` gives "nan" for NaN and "<NA>" for pd.NA). A title that is literally
# "nan" is lost too; MIND has none, and keeping the artefact would be worse.
_MISSING_STRINGS = frozenset({"nan", "NaN", "<NA>"})


class NewsColumns(Protocol):
    """Parallel lists of the news fields that go into the text, one entry per news."""

    category: Sequence[Any]
    subcategory: Sequence[Any]
    title: Sequence[Any]
    abstract: Sequence[Any]


def _clean_part(value: Any) -> str:
    """Return `value` as a string with whitespace runs collapsed, or "" when it is missing."""
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return ""
    text = str(value)
    if text in _MISSING_STRINGS:
        return ""
    # str.split() without arguments splits on any run of Unicode whitespace (tabs,
    # newlines, non-breaking spaces), so the join leaves single spaces only.
    return " ".join(text.split())


def news_text(category: Any, subcategory: Any, title: Any, abstract: Any) -> str:
    """Build the encoder input for one news article.

    The format is ``Category: {category} - {subcategory} | Title: {title} | Abstract: {abstract}``.
    A missing part (None, NaN, or the "nan" / "<NA>" string that pandas writes for a
    missing cell) becomes an empty string, so the text never contains "nan" and is never
    empty because the field labels are always there.

    Parameters
    ----------
    category, subcategory, title, abstract : str or None or float
        Raw field values as read from news.tsv.

    Returns
    -------
    str
        The composed text with every whitespace run collapsed to one space.

    Examples
    --------
    >>> news_text("sports", "nfl", "Big\\twin", float("nan"))
    'Category: sports - nfl | Title: Big win | Abstract: '
    """
    return (
        f"Category: {_clean_part(category)} - {_clean_part(subcategory)}"
        f" | Title: {_clean_part(title)}"
        f" | Abstract: {_clean_part(abstract)}"
    )


def news_texts(news: NewsColumns) -> list[str]:
    """Build the encoder input for every news article in a column table.

    Parameters
    ----------
    news : object
        Has attributes ``category``, ``subcategory``, ``title`` and ``abstract``,
        each a sequence with one entry per news.

    Returns
    -------
    list of str
        One text per news, in the order of the columns.

    Raises
    ------
    ValueError
        If the four columns have different lengths.
    """
    columns = {
        "category": news.category,
        "subcategory": news.subcategory,
        "title": news.title,
        "abstract": news.abstract,
    }
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"news columns have different lengths {lengths}; expected one entry per news "
            "in every column (check how the news table was read)"
        )
    return [
        news_text(category, subcategory, title, abstract)
        for category, subcategory, title, abstract in zip(
            news.category, news.subcategory, news.title, news.abstract
        )
    ]

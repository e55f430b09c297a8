import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from minirec.text.compose import news_text, news_texts

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_full_fields_give_exact_format():
    text = news_text("sports", "football_nfl", "Bears win", "A late field goal.")

    assert text == (
        "Category: sports - football_nfl | Title: Bears win | Abstract: A late field goal."
    )


@pytest.mark.parametrize("missing", [None, float("nan"), np.float32("nan"), "nan", "NaN", pd.NA])
def test_missing_abstract_becomes_empty(missing):
    text = news_text("news", "newsus", "Storm hits coast", missing)

    assert text == "Category: news - newsus | Title: Storm hits coast | Abstract: "


def test_all_missing_keeps_labels():
    text = news_text(None, float("nan"), "nan", None)

    assert text == "Category:  -  | Title:  | Abstract: "


def test_whitespace_runs_collapse_to_space():
    text = news_text(" lifestyle\t", "travel", "Ten\tplaces\n\nto  see", "Line one\r\nline two ")

    assert text == (
        "Category: lifestyle - travel | Title: Ten places to see | Abstract: Line one line two"
    )


def test_word_containing_nan_is_kept():
    text = news_text("finance", "markets", "Nancy nano banana", "nan bread")

    assert "Title: Nancy nano banana" in text
    assert text.endswith("Abstract: nan bread")


def test_news_texts_follow_column_order():
    news = SimpleNamespace(
        category=["sports", "news"],
        subcategory=["nba", "newsworld"],
        title=["Lakers lose", "Summit ends"],
        abstract=["", None],
    )

    texts = news_texts(news)

    assert texts == [
        "Category: sports - nba | Title: Lakers lose | Abstract: ",
        "Category: news - newsworld | Title: Summit ends | Abstract: ",
    ]


def test_news_texts_reject_unequal_columns():
    news = SimpleNamespace(category=["a", "b"], subcategory=["x"], title=["t", "u"], abstract=["", ""])

    with pytest.raises(ValueError, match="different lengths"):
        news_texts(news)


def test_real_news_never_contain_nan():
    news_path = DATA / "mind_tiny" / "news.tsv"
    if not news_path.exists():
        pytest.skip(f"real MIND data not found at {news_path}")
    table = pd.read_csv(
        news_path, sep="\t", header=None, quoting=csv.QUOTE_NONE,
        names=["news_id", "category", "subcategory", "title", "abstract", "url", "te", "ae"],
    )
    assert table["abstract"].isna().any(), "expected some news without abstract in mind_tiny"

    texts = news_texts(SimpleNamespace(
        category=list(table["category"]), subcategory=list(table["subcategory"]),
        title=list(table["title"]), abstract=list(table["abstract"]),
    ))

    assert len(texts) == 500
    assert not any("Abstract: nan" in text for text in texts)
    assert all(text.startswith("Category: ") for text in texts)

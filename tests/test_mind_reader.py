"""Readers of news.tsv, behaviors.tsv and entity_embedding.vec, on small files and on real MIND rows."""

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from minirec.data.entity_vectors import read_entity_vectors
from minirec.data.mind import MindFormatError, read_behaviors, read_news
from minirec.data.report import ReadReport

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

ENTITY_Q1 = ('{"Label": "A", "Type": "P", "WikidataId": "Q1", "Confidence": 1.0, '
             '"OccurrenceOffsets": [0], "SurfaceForms": ["A"]}')
ENTITY_Q2 = ('{"Label": "B", "Type": "G", "WikidataId": "Q2", "Confidence": 0.9, '
             '"OccurrenceOffsets": [4], "SurfaceForms": ["B"]}')
ENTITY_NO_ID = '{"Label": "C", "Type": "G", "Confidence": 0.9, "OccurrenceOffsets": [8], "SurfaceForms": ["C"]}'


def write(path: Path, lines: list[str], ending: str = "\n") -> Path:
    path.write_text("".join(line + ending for line in lines), encoding="utf-8")
    return path


def news_row(news_id: str, title: str = "Title", abstract: str = "Abstract", title_entities: str = "[]",
             abstract_entities: str = "[]") -> str:
    fields = [news_id, "news", "newsworld", title, abstract, f"https://example.com/{news_id}.html",
              title_entities, abstract_entities]
    return "\t".join(fields)


def utc_seconds(*parts: int) -> float:
    return datetime(*parts, tzinfo=timezone.utc).timestamp()


# ---------------------------------------------------------------------------------------------- news


def test_news_keeps_quotes_verbatim(tmp_path):
    path = write(tmp_path / "news.tsv", [
        news_row("N1", title='"Quoted" opening words', abstract='He said "no'),
        news_row("N2", title='Plain title', abstract='closing quote"'),
        news_row("N3"),
    ])
    news = read_news(path)
    assert len(news.ids) == 3  # a quote does not swallow the next line
    assert news.title[0] == '"Quoted" opening words'
    assert news.abstract[0] == 'He said "no'
    assert news.abstract[1] == 'closing quote"'


def test_news_row_count_equals_line_count(tmp_path):
    lines = [news_row(f"N{i}", title=f'"Title {i}') for i in range(1, 26)]
    news = read_news(write(tmp_path / "news.tsv", lines))
    assert news.ids == [f"N{i}" for i in range(1, 26)]
    assert news.index() == {f"N{i}": i - 1 for i in range(1, 26)}


def test_news_empty_text_is_empty_string(tmp_path):
    path = write(tmp_path / "news.tsv", [news_row("N1", title="", abstract=""), news_row("N2", abstract="")])
    news = read_news(path)
    assert news.title == ["", "Title"]
    assert news.abstract == ["", ""]
    assert "nan" not in news.title + news.abstract


def test_news_accepts_seven_field_row(tmp_path):
    seven_fields = "\t".join(
        ["N1", "sports", "football", "Title", "Abstract", "https://example.com", f"[{ENTITY_Q1}]"]
    )
    report = ReadReport()
    news = read_news(write(tmp_path / "news.tsv", [seven_fields, news_row("N2")]), report)
    assert news.ids == ["N1", "N2"]
    assert news.title_entities[0] == ["Q1"]
    assert news.abstract_entities[0] == []
    assert report.counts["news_row_with_7_fields"] == 1


def test_news_rejects_row_missing_middle_field(tmp_path):
    # The Abstract is missing, so the URL moved into it and TitleEntities into the URL column.
    shifted = "\t".join(["N1", "sports", "football", "Title", "https://example.com", "[]", f"[{ENTITY_Q1}]"])
    path = write(tmp_path / "news.tsv", [news_row("N0"), shifted])
    with pytest.raises(MindFormatError, match=r"news.tsv:2: .*a field before URL is missing"):
        read_news(path)


def test_news_entities_in_order_deduplicated(tmp_path):
    title_entities = f"[{ENTITY_Q2}, {ENTITY_Q1}, {ENTITY_Q2}]"
    abstract_entities = f"[{ENTITY_NO_ID}, {ENTITY_Q1}]"
    path = write(tmp_path / "news.tsv", [
        news_row("N1", title_entities=title_entities, abstract_entities=abstract_entities),
        news_row("N2", title_entities="", abstract_entities=""),
    ])
    report = ReadReport()
    news = read_news(path, report)
    assert news.title_entities == [["Q2", "Q1"], []]
    assert news.abstract_entities == [["Q1"], []]
    assert report.counts == {"entity_without_wikidata_id": 1}


def test_news_invalid_entity_json_names_field(tmp_path):
    path = write(tmp_path / "news.tsv", [news_row("N1"), news_row("N2", abstract_entities='[{"WikidataId": "Q1"')])
    with pytest.raises(MindFormatError) as caught:
        read_news(path)
    assert caught.value.line == 2
    assert caught.value.field == "AbstractEntities"
    assert "news.tsv:2: field AbstractEntities" in str(caught.value)


def test_news_wrong_field_count_names_line(tmp_path):
    path = write(tmp_path / "news.tsv", [news_row("N1"), news_row("N2"), "N3\tnews\tnewsworld\tTitle"])
    with pytest.raises(MindFormatError) as caught:
        read_news(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ")
    assert "expected 8 tab-separated fields" in message
    assert "got 4" in message


def test_news_duplicate_id_names_both_lines(tmp_path):
    path = write(tmp_path / "news.tsv", [news_row("N1"), news_row("N2"), news_row("N1")])
    with pytest.raises(MindFormatError) as caught:
        read_news(path)
    assert caught.value.line == 3
    assert "line 1" in str(caught.value)


def test_news_ignores_trailing_blank_lines(tmp_path):
    path = tmp_path / "news.tsv"
    path.write_text(news_row("N1") + "\n" + news_row("N2") + "\n\n\n", encoding="utf-8")
    assert read_news(path).ids == ["N1", "N2"]


def test_news_blank_line_inside_raises(tmp_path):
    path = tmp_path / "news.tsv"
    path.write_text(news_row("N1") + "\n\n" + news_row("N2") + "\n", encoding="utf-8")
    with pytest.raises(MindFormatError) as caught:
        read_news(path)
    assert caught.value.line == 2


def test_news_tolerates_bom_and_crlf(tmp_path):
    path = tmp_path / "news.tsv"
    text = "\ufeff" + news_row("N1") + "\r\n" + news_row("N2", abstract_entities="") + "\r\n"
    path.write_bytes(text.encode("utf-8"))
    news = read_news(path)
    assert news.ids == ["N1", "N2"]
    assert news.abstract_entities == [[], []]


# ----------------------------------------------------------------------------------------- behaviors


def test_behaviors_labelled_file_parses(tmp_path):
    path = write(tmp_path / "behaviors.tsv", [
        "1\tU13740\t11/11/2019 9:05:58 AM\tN55189 N42782\tN55689-1 N35729-0",
        "2\tU91836\t11/12/2019 12:11:30 PM\t\tN20678-0 N39317-0 N58114-1",
        "3\tU73700\t11/14/2019 12:01:48 AM\tN10732\tN50014-0",
    ])
    behaviors = read_behaviors(path)
    assert len(behaviors) == 3
    assert behaviors.has_labels
    assert behaviors.impression_ids == ["1", "2", "3"]
    assert behaviors.user_ids == ["U13740", "U91836", "U73700"]
    assert behaviors.histories == [["N55189", "N42782"], [], ["N10732"]]
    assert behaviors.candidates[1] == ["N20678", "N39317", "N58114"]
    assert behaviors.labels[0].tolist() == [1, 0]
    assert behaviors.labels[1].tolist() == [0, 0, 1]
    assert behaviors.labels[0].dtype == np.int8
    # 12 PM is noon and 12 AM is midnight.
    expected = [utc_seconds(2019, 11, 11, 9, 5, 58), utc_seconds(2019, 11, 12, 12, 11, 30),
                utc_seconds(2019, 11, 14, 0, 1, 48)]
    assert behaviors.times.dtype == np.float64
    assert behaviors.times.tolist() == expected


def test_behaviors_unlabelled_gives_none(tmp_path):
    path = write(tmp_path / "behaviors.tsv", [
        "1\tU1\t11/15/2019 8:55:22 AM\tN1 N2\tN3 N4 N5",
        "2\tU2\t11/15/2019 8:55:23 PM\t\tN6",
    ])
    behaviors = read_behaviors(path)
    assert behaviors.labels is None
    assert not behaviors.has_labels
    assert behaviors.candidates == [["N3", "N4", "N5"], ["N6"]]
    assert behaviors.histories[1] == []


def test_behaviors_bad_label_suffix_names_line(tmp_path):
    path = write(tmp_path / "behaviors.tsv", [
        "1\tU1\t11/11/2019 9:05:58 AM\tN1\tN2-1 N3-0",
        "2\tU2\t11/11/2019 9:05:59 AM\tN1\tN4-0 N55689-2",
    ])
    with pytest.raises(MindFormatError) as caught:
        read_behaviors(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: field Impressions: ")
    assert '"N55689-2"' in message
    assert "Fix the line or remove it." in message


def test_behaviors_bad_time_names_format(tmp_path):
    path = write(tmp_path / "behaviors.tsv", [
        "1\tU1\t11/11/2019 9:05:58 AM\tN1\tN2-1 N3-0",
        "2\tU1\t11/11/2019 9:07:12 PM\tN1\tN2-1 N3-0",
        "3\tU2\t2019-11-11 09:05:58\tN1\tN4-0 N5-1",
    ])
    with pytest.raises(MindFormatError) as caught:
        read_behaviors(path)
    assert caught.value.line == 3
    assert caught.value.field == "Time"
    assert "%m/%d/%Y %I:%M:%S %p" in str(caught.value)


@pytest.mark.parametrize("time_text", ["11/11/2019 13:05:58 AM", "11/11/2019 9:61:00 PM", "13/11/2019 9:05:58 AM",
                                       "11/11/2019 9:05:58", "11/11/2019 9:05 AM"])
def test_behaviors_rejects_invalid_times(tmp_path, time_text):
    path = write(tmp_path / "behaviors.tsv", [f"1\tU1\t{time_text}\tN1\tN2-1 N3-0"])
    with pytest.raises(MindFormatError, match="field Time"):
        read_behaviors(path)


def test_behaviors_mixed_labels_name_line(tmp_path):
    path = write(tmp_path / "behaviors.tsv", [
        "1\tU1\t11/11/2019 9:05:58 AM\tN1\tN2-1 N3-0",
        "2\tU2\t11/11/2019 9:05:59 AM\tN1\tN4-0 N5-1",
        "3\tU3\t11/11/2019 9:06:00 AM\tN1\tN6 N7",
    ])
    with pytest.raises(MindFormatError) as caught:
        read_behaviors(path)
    assert str(caught.value).startswith(f"{path}:3: field Impressions")
    assert "line 1" in str(caught.value)


def test_behaviors_unlabelled_then_labelled_raises(tmp_path):
    path = write(tmp_path / "behaviors.tsv", [
        "1\tU1\t11/11/2019 9:05:58 AM\tN1\tN2 N3",
        "2\tU2\t11/11/2019 9:05:59 AM\tN1\tN4-0 N5-1",
    ])
    with pytest.raises(MindFormatError) as caught:
        read_behaviors(path)
    assert caught.value.line == 2


def test_behaviors_mixed_within_line_raises(tmp_path):
    path = write(tmp_path / "behaviors.tsv", ["1\tU1\t11/11/2019 9:05:58 AM\tN1\tN2-1 N3"])
    with pytest.raises(MindFormatError) as caught:
        read_behaviors(path)
    assert caught.value.line == 1
    assert caught.value.got == "N3"


def test_behaviors_wrong_field_count_names_line(tmp_path):
    path = write(tmp_path / "behaviors.tsv", [
        "1\tU1\t11/11/2019 9:05:58 AM\tN1\tN2-1 N3-0",
        "2\tU2\t11/11/2019 9:05:59 AM\tN4-0 N5-1",
    ])
    with pytest.raises(MindFormatError) as caught:
        read_behaviors(path)
    assert str(caught.value).startswith(f"{path}:2: expected 5 tab-separated fields")


def test_behaviors_empty_candidates_raise(tmp_path):
    path = write(tmp_path / "behaviors.tsv", ["1\tU1\t11/11/2019 9:05:58 AM\tN1\t"])
    with pytest.raises(MindFormatError, match="at least one candidate"):
        read_behaviors(path)


def test_behaviors_duplicate_impression_raises(tmp_path):
    path = write(tmp_path / "behaviors.tsv", [
        "7\tU1\t11/11/2019 9:05:58 AM\tN1\tN2-1 N3-0",
        "7\tU2\t11/11/2019 9:05:59 AM\tN1\tN4-0 N5-1",
    ])
    with pytest.raises(MindFormatError) as caught:
        read_behaviors(path)
    assert caught.value.line == 2
    assert "line 1" in str(caught.value)


def test_behaviors_subset_keeps_index_order(tmp_path):
    path = write(tmp_path / "behaviors.tsv", [
        f"{i}\tU{i}\t11/11/2019 9:05:{i:02d} AM\tN{i}\tN{i}0-1 N{i}1-0" for i in range(1, 5)
    ])
    behaviors = read_behaviors(path)
    part = behaviors.subset([3, 0])
    assert part.impression_ids == ["4", "1"]
    assert part.user_ids == ["U4", "U1"]
    assert part.times.tolist() == [behaviors.times[3], behaviors.times[0]]
    assert part.histories == [["N4"], ["N1"]]
    assert part.candidates == [["N40", "N41"], ["N10", "N11"]]
    assert [labels.tolist() for labels in part.labels] == [[1, 0], [1, 0]]


# ------------------------------------------------------------------------------------ entity vectors


def test_entity_vectors_read_with_trailing_tab(tmp_path):
    path = write(tmp_path / "entity_embedding.vec", ["Q1\t0.5\t-1.25\t2\t", "Q2\t1e-3\t0\t-0.0\t"])
    ids, vectors = read_entity_vectors(path)
    assert ids == ["Q1", "Q2"]
    assert vectors.dtype == np.float32
    assert vectors.shape == (2, 3)
    assert vectors.tolist() == [[0.5, -1.25, 2.0], [np.float32(1e-3), 0.0, 0.0]]


def test_entity_vectors_keep_first_duplicate(tmp_path):
    path = write(tmp_path / "entity_embedding.vec", ["Q1\t1\t2", "Q2\t3\t4", "Q1\t5\t6"])
    report = ReadReport()
    ids, vectors = read_entity_vectors(path, report)
    assert ids == ["Q1", "Q2"]
    assert vectors.tolist() == [[1, 2], [3, 4]]
    assert report.counts == {"duplicate_entity_vector": 1}


def test_entity_vectors_non_numeric_names_column(tmp_path):
    path = write(tmp_path / "entity_embedding.vec", ["Q1\t1\t2\t3", "Q2\t1\tabc\t3"])
    with pytest.raises(MindFormatError) as caught:
        read_entity_vectors(path)
    assert caught.value.line == 2
    assert caught.value.field == "column 3"
    assert str(caught.value).startswith(f"{path}:2: column 3: ")
    assert '"abc"' in str(caught.value)


def test_entity_vectors_dimension_mismatch_raises(tmp_path):
    path = write(tmp_path / "entity_embedding.vec", ["Q1\t1\t2\t3", "Q2\t1\t2\t3", "Q3\t1\t2"])
    with pytest.raises(MindFormatError) as caught:
        read_entity_vectors(path)
    assert caught.value.line == 3
    assert "3 numbers" in str(caught.value)


# -------------------------------------------------------------------------------------------- report


def test_report_lines_describe_counts():
    report = ReadReport()
    report.add("history_news_without_row", 12)
    report.add("some_new_key")
    other = ReadReport()
    other.add("history_news_without_row", 3)
    report.merge(other)
    assert report.counts == {"history_news_without_row": 15, "some_new_key": 1}
    assert report.lines() == ["15 history ids without a row in news.tsv (ID-only news)", "1 some new key"]


# ------------------------------------------------------------------------------------ real MIND data


def require(folder: Path) -> Path:
    if not (folder / "news.tsv").is_file():
        pytest.skip(f"real MIND sample not found at {folder}")
    return folder


def test_real_mind_sample_counts():
    folder = require(SHARED_DATA / "mind_sample" / "train")
    news = read_news(folder / "news.tsv")
    behaviors = read_behaviors(folder / "behaviors.tsv")
    assert len(news.ids) == 2551
    assert len(behaviors) == 6936
    assert behaviors.has_labels
    assert "nan" not in news.title
    assert "nan" not in news.abstract


def test_real_mind_tiny_counts():
    folder = require(SHARED_DATA / "mind_tiny")
    news = read_news(folder / "news.tsv")
    behaviors = read_behaviors(folder / "behaviors.tsv")
    assert len(news.ids) == 500
    assert len(behaviors) == 2000
    assert news.ids[0] == "N55528"
    assert news.title_entities[0] == ["Q80976", "Q43274", "Q9682"]
    assert behaviors.candidates[0] == ["N55689", "N35729"]
    assert behaviors.labels[0].tolist() == [1, 0]
    assert behaviors.times[0] == utc_seconds(2019, 11, 11, 9, 5, 58)


def test_real_relation_vectors_shape():
    path = SHARED_DATA / "mind_tiny" / "relation_embedding.vec"
    if not path.is_file():
        pytest.skip(f"real MIND relation vectors not found at {path}")
    ids, vectors = read_entity_vectors(path)
    assert len(ids) == 1091
    assert vectors.shape == (1091, 100)
    assert ids[0] == "P31"
    assert vectors[0, 0] == np.float32(-0.073467)


@pytest.mark.parametrize("bad_value", ["nan", "inf", "1e300"])
def test_entity_vectors_reject_non_finite(tmp_path, bad_value):
    path = write(tmp_path / "entity_embedding.vec", ["Q1\t1\t2\t3", f"Q2\t1\t2\t{bad_value}"])
    with pytest.raises(MindFormatError) as caught:
        read_entity_vectors(path)
    assert caught.value.line == 2
    assert caught.value.field == "column 4"

"""The minirec-eval command, run through click's test runner."""

import json
import math
from pathlib import Path

from click.testing import CliRunner

from minirec.cli.eval import main
from minirec.eval.prediction import write_prediction


def write_truth(folder: Path) -> Path:
    path = folder / "behaviors.tsv"
    path.write_text(
        "1\tU1\t11/11/2019 9:05:58 AM\tN9\tN1-1 N2-0 N3-0\n"
        "2\tU2\t11/11/2019 9:06:58 AM\t\tN4-0 N5-1\n"
        "3\tU3\t11/11/2019 9:07:58 AM\tN9\tN6-0\n",
        encoding="utf-8",
    )
    return path


def write_ranks(folder: Path) -> Path:
    return write_prediction(folder / "prediction.zip", ["1", "2", "3"], [[1, 2, 3], [1, 2], [1]])


# Impression 1 ranks its click first, impression 2 second of two, impression 3 has no click.
EXPECTED_AUC = (1.0 + 0.0) / 2
EXPECTED_MRR = (1.0 + 0.5) / 2
EXPECTED_NDCG = (1.0 + 1 / math.log2(3)) / 2


def test_table_output_lists_metrics(tmp_path):
    result = CliRunner().invoke(main, [str(write_ranks(tmp_path)), str(write_truth(tmp_path))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"AUC      {EXPECTED_AUC:.4f}"
    assert lines[1] == f"MRR      {EXPECTED_MRR:.4f}"
    assert lines[2] == f"nDCG@5   {EXPECTED_NDCG:.4f}"
    assert lines[3] == f"nDCG@10  {EXPECTED_NDCG:.4f}"
    assert "2 of 3" in lines[4]
    assert lines[5].startswith("skipped impressions  1 ")


def test_json_output_has_values(tmp_path):
    result = CliRunner().invoke(main, [str(write_ranks(tmp_path)), str(write_truth(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    values = json.loads(result.output)
    assert math.isclose(values["auc"], EXPECTED_AUC, abs_tol=1e-12)
    assert math.isclose(values["mrr"], EXPECTED_MRR, abs_tol=1e-12)
    assert math.isclose(values["ndcg5"], EXPECTED_NDCG, abs_tol=1e-12)
    assert math.isclose(values["ndcg10"], EXPECTED_NDCG, abs_tol=1e-12)
    assert values["n_impressions"] == 3
    assert values["n_scored"] == 2
    assert values["n_skipped"] == 1


def test_json_nothing_scored_gives_null(tmp_path):
    truth = tmp_path / "behaviors.tsv"
    truth.write_text("1\tU1\t11/11/2019 9:05:58 AM\t\tN1-0 N2-0\n", encoding="utf-8")
    prediction = write_prediction(tmp_path / "prediction.txt", ["1"], [[2, 1]])
    result = CliRunner().invoke(main, [str(prediction), str(truth), "--json"])
    assert result.exit_code == 0, result.output
    values = json.loads(result.output)
    assert values["auc"] is None
    assert values["n_skipped"] == 1


def test_missing_prediction_line_fails_clearly(tmp_path):
    truth = write_truth(tmp_path)
    prediction = write_prediction(tmp_path / "prediction.txt", ["1", "2"], [[1, 2, 3], [1, 2]])
    result = CliRunner().invoke(main, [str(prediction), str(truth)])
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert "impression 3" in result.output


def test_malformed_prediction_names_line(tmp_path):
    truth = write_truth(tmp_path)
    prediction = tmp_path / "prediction.txt"
    prediction.write_text("1 [1,2,3]\n2 [1;2]\n3 [1]\n", encoding="utf-8")
    result = CliRunner().invoke(main, [str(prediction), str(truth)])
    assert result.exit_code == 1
    assert f"{prediction}:2:" in result.output


def test_empty_truth_file_fails_clearly(tmp_path):
    truth = tmp_path / "behaviors.tsv"
    truth.write_text("", encoding="utf-8")
    prediction = write_prediction(tmp_path / "prediction.txt", ["1"], [[1]])
    result = CliRunner().invoke(main, [str(prediction), str(truth)])
    assert result.exit_code == 1
    assert f"{truth} has no impressions" in result.output


def test_prediction_zip_that_is_not_a_zip(tmp_path):
    truth = write_truth(tmp_path)
    prediction = tmp_path / "prediction.zip"
    prediction.write_text("1 [1,2,3]\n", encoding="utf-8")
    result = CliRunner().invoke(main, [str(prediction), str(truth)])
    assert result.exit_code == 1
    assert f"{prediction} is not a zip file" in result.output

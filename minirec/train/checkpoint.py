"""Saving and loading a trained model with everything its predictions depend on.

A model directory contains ``config.json`` (the :class:`ModelConfig`) and ``model.npz``: the parameters,
the BatchNorm running statistics, the news catalogue, the text vectors, the graph adjacency and the
user vocabulary. Nothing is rebuilt at load time, so evaluation sees exactly the inputs training saw.
No pickle is written or read.

``training_state.npz`` and ``training_state.json`` beside them hold what resuming needs: optimiser
moments, scheduler and early-stopping counters, the epoch, the position within it, and the state of
the random generators.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from minirec.data.catalog import NewsCatalog, save_arrays
from minirec.model.config import ModelConfig
from minirec.model.news_encoder import NewsInputs
from minirec.model.recommender import Recommender

MODEL_FILE, CONFIG_FILE = "model.npz", "config.json"
STATE_FILE, STATE_JSON = "training_state.npz", "training_state.json"


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; outputs are meant to be shared like any file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_model(directory: Path, model: Recommender, user_ids: list[str]) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    inputs = model.news_encoder.inputs
    arrays = {"param:" + k: v for k, v in model.state_dict().items()}
    arrays.update(inputs.catalog.to_arrays())
    arrays["user_ids"] = np.array(user_ids, dtype=str)
    if inputs.text_vectors is not None:
        arrays["text_vectors"] = inputs.text_vectors
        arrays["has_text"] = inputs.has_text
    if inputs.adjacency is not None:
        adjacency = inputs.adjacency.tocsr()
        arrays.update(adjacency_data=adjacency.data, adjacency_indices=adjacency.indices,
                      adjacency_indptr=adjacency.indptr, adjacency_shape=np.array(adjacency.shape))
        arrays["entity_init"] = inputs.entity_init
        arrays["entity_ids"] = np.array(inputs.entity_ids, dtype=str)
    save_arrays(directory / MODEL_FILE, arrays)
    write_text_atomic(directory / CONFIG_FILE, model.config.to_json())


def load_model(directory: Path) -> tuple[Recommender, list[str]]:
    """Return the model saved in ``directory`` and its user vocabulary (position + 1 = user row)."""
    directory = Path(directory)
    for name in (MODEL_FILE, CONFIG_FILE):
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory / name} not found: is {directory} a directory written by minirec-train?")
    config = ModelConfig.load(directory / CONFIG_FILE)
    with np.load(directory / MODEL_FILE, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    inputs = NewsInputs(catalog=NewsCatalog.from_arrays(arrays))
    if "text_vectors" in arrays:
        inputs.text_vectors, inputs.has_text = arrays["text_vectors"], arrays["has_text"]
    if "adjacency_data" in arrays:
        inputs.adjacency = sp.csr_matrix(
            (arrays["adjacency_data"], arrays["adjacency_indices"], arrays["adjacency_indptr"]),
            shape=tuple(arrays["adjacency_shape"]))
        inputs.entity_init = arrays["entity_init"]
        inputs.entity_ids = [str(e) for e in arrays["entity_ids"]]
    model = Recommender(config, inputs)
    model.load_state_dict({k[len("param:"):]: v for k, v in arrays.items() if k.startswith("param:")})
    return model, [str(u) for u in arrays["user_ids"]]


def save_training_state(directory: Path, arrays: dict[str, np.ndarray], info: dict) -> None:
    """Write the optimiser arrays and the JSON counters; the JSON goes last and marks the pair complete."""
    directory = Path(directory)
    save_arrays(directory / STATE_FILE, arrays)
    write_text_atomic(directory / STATE_JSON, json.dumps(info, indent=2))


def load_training_state(directory: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    directory = Path(directory)
    if not (directory / STATE_JSON).exists() or not (directory / STATE_FILE).exists():
        return None
    info = json.loads((directory / STATE_JSON).read_text(encoding="utf-8"))
    with np.load(directory / STATE_FILE, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    return arrays, info

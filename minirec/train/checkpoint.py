"""Saving and loading a trained model with everything its predictions depend on.

A model directory contains ``config.json`` (the :class:`ModelConfig`) and ``model.npz``: the parameters,
the BatchNorm running statistics, the news catalogue, the text vectors, the graph adjacency and the
user vocabulary. Nothing is rebuilt at load time, so evaluation sees exactly the inputs training saw.
No pickle is written or read.

A training checkpoint adds ``training_state.npz`` and ``training_state.json``: what resuming needs,
that is the optimiser moments, scheduler and early-stopping counters, the epoch, the position
within it, and the state of the random generators. Each checkpoint is written whole into a new
folder ``save-N`` of the checkpoint directory, and only then does ``latest.json`` (replaced
atomically) name it. A run killed while writing a checkpoint therefore resumes from the previous
complete one, never from a model of one save with the optimiser state of another.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from minirec.data.catalog import NewsCatalog
from minirec.files import save_arrays, write_text_atomic
from minirec.model.config import ModelConfig
from minirec.model.news_encoder import NewsInputs
from minirec.model.recommender import Recommender

MODEL_FILE, CONFIG_FILE = "model.npz", "config.json"
STATE_FILE, STATE_JSON = "training_state.npz", "training_state.json"
LATEST_FILE = "latest.json"


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
    try:
        config = ModelConfig.load(directory / CONFIG_FILE)
    except (ValueError, TypeError, KeyError, AttributeError) as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{directory / CONFIG_FILE} is damaged ({error}): retrain the model or restore the file") from None
    arrays = _load_arrays(directory / MODEL_FILE)
    try:
        model = _build_model(config, arrays)
        users = [str(u) for u in arrays["user_ids"]]
    except (ValueError, KeyError, AttributeError, TypeError) as error:
        raise ValueError(f"{directory / MODEL_FILE} does not match {directory / CONFIG_FILE} ({error!r}): were they "
                         "written by the same run? Retrain the model or restore both files") from None
    return model, users


def _build_model(config: ModelConfig, arrays: dict[str, np.ndarray]) -> Recommender:
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
    return model


def save_checkpoint(directory: Path, model: Recommender, user_ids: list[str], arrays: dict[str, np.ndarray],
                    info: dict) -> Path:
    """Write the model and the training state into a new ``save-N`` folder, then point ``latest.json`` at it.

    Older ``save-N`` folders are removed afterwards. Returns the new folder.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    previous = _latest_save(directory)
    number = int(previous.name.split("-")[1]) + 1 if previous is not None else 1
    target = directory / f"save-{number}"
    shutil.rmtree(target, ignore_errors=True)  # left over from a save that was killed before latest.json
    save_model(target, model, user_ids)
    save_arrays(target / STATE_FILE, arrays)
    write_text_atomic(target / STATE_JSON, json.dumps(info, indent=2))
    write_text_atomic(directory / LATEST_FILE, json.dumps({"save": target.name}))
    for old in directory.glob("save-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def load_checkpoint(directory: Path) -> tuple[Path, dict[str, np.ndarray], dict] | None:
    """Return the folder of the latest complete checkpoint, its optimiser arrays and counters; None without one.

    Load the model itself from the returned folder with :func:`load_model`.
    """
    target = _latest_save(Path(directory))
    if target is None:
        return None
    try:
        info = json.loads((target / STATE_JSON).read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{target / STATE_JSON} is damaged ({error}): pass --fresh to start the run again") from None
    return target, _load_arrays(target / STATE_FILE, "pass --fresh to start the run again"), info


def _load_arrays(path: Path, remedy: str = "retrain the model or restore the file") -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file, turning the errors of a damaged file into one ValueError."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        # A damaged file surfaces as any of these; NumPy's advice to allow pickles is never right here.
        raise ValueError(f"{path} is damaged or is not an .npz file written by minirec ({type(error).__name__}): "
                         f"{remedy}") from None


def _latest_save(directory: Path) -> Path | None:
    pointer = directory / LATEST_FILE
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["save"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{pointer} is damaged ({error}): pass --fresh to start the run again") from None
    # Only a save folder of this directory is accepted, never a path that leads out of it.
    if not isinstance(name, str) or not re.fullmatch(r"save-[0-9]+", name):
        raise ValueError(f"{pointer} names {name!r}, expected a folder save-N: pass --fresh to start the run again")
    target = directory / name
    if not (target / STATE_JSON).is_file():
        raise ValueError(f"{pointer} names {target}, which has no {STATE_JSON}: pass --fresh to start the run again")
    return target

"""Shared parts of the benchmark scripts: the generated data cache, the prepared run, timers and result files.

Generated data lives in ``runs/benchmarks/data/<scale>`` (``runs/`` is not tracked by git) and is
made by :func:`minirec.synth.generate.generate_mind` when missing. The LSA text vectors of a scale
are fitted once, on the first run, and saved beside the data as ``<scale>_lsa.npy`` with an ids
file. Later runs load them through ``RunOptions.text_embeddings``: the vectors are the same, and
the few minutes of the fit are not repeated in every benchmark job.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from minirec.model.config import ModelConfig, TrainConfig
from minirec.synth.generate import generate_mind
from minirec.train.pipeline import PreparedData, RunOptions, prepare

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / "benchmarks"
DATA = CACHE / "data"

logger = logging.getLogger("benchmarks")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    # The readers log one line per skipped kind of value; the benchmarks need only their own lines.
    logging.getLogger("minirec").setLevel(logging.WARNING)


def ensure_data(scale: str, seed: int = 0) -> Path:
    """Return the folder of the generated ``scale`` dataset, generating it first when missing."""
    folder = DATA / scale
    if (folder / "dev" / "behaviors.tsv").is_file():
        return folder
    logger.info("generating the %s dataset into %s", scale, folder)
    partial = DATA / f"{scale}.partial"
    generate_mind(partial, scale=scale, seed=seed)
    os.replace(partial, folder)
    return folder


def text_vectors_path(scale: str) -> Path:
    return DATA / f"{scale}_lsa.npy"


def prepare_run(scale: str, max_impressions: int | None = None, **model_options) -> tuple[RunOptions, PreparedData, dict]:
    """Prepare the ``scale`` dataset with the default model; return the options, the data and timings.

    The timings dict contains ``prepare_seconds`` and whether the LSA vectors were fitted in this run.
    """
    folder = ensure_data(scale)
    vectors = text_vectors_path(scale)
    options = RunOptions(
        data=folder,
        out=CACHE / "out" / scale,
        model=ModelConfig(**model_options),
        # The speed targets are for an epoch over every candidate, which is what the BCE objective trains on.
        train=TrainConfig(max_impressions=max_impressions, objective="bce"),
        text_embeddings=vectors if vectors.is_file() else None,
        progress=False,
    )
    started = time.perf_counter()
    prepared = prepare(options)
    seconds = time.perf_counter() - started
    fitted = options.text_embeddings is None
    if fitted:
        save_text_vectors(prepared, vectors)
    return options, prepared, {"prepare_seconds": round(seconds, 1), "lsa_fitted": fitted}


def save_text_vectors(prepared: PreparedData, path: Path) -> None:
    inputs = prepared.inputs
    rows = np.flatnonzero(inputs.has_text)
    ids = [inputs.catalog.ids[row - 1] for row in rows]  # catalogue row r is the news ids[r - 1]
    partial_matrix = path.with_name(path.stem + ".partial.npy")
    partial_ids = path.with_name(path.stem + "_ids.partial")
    np.save(partial_matrix, inputs.text_vectors[rows])
    partial_ids.write_text("\n".join(ids) + "\n", encoding="utf-8")
    os.replace(partial_ids, path.with_name(path.stem + "_ids.txt"))
    os.replace(partial_matrix, path)
    logger.info("saved %d LSA text vectors to %s for later runs", len(rows), path)


def load_average() -> float:
    """Return the load average of the last minute: other processes slow every timing down."""
    return round(os.getloadavg()[0], 2)


def peak_rss_gb() -> float:
    """Return this process's peak resident set size in GB (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)


def best_time(function: Callable[[], object], repeats: int = 5) -> float:
    """Return the fastest of ``repeats`` wall-clock timings of ``function()``, in seconds.

    The minimum is the timing least disturbed by other processes.
    """
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def write_result(path: str | None, result: dict) -> None:
    """Write ``result`` as JSON to ``path`` (atomically), or to standard output without a path."""
    result.setdefault("load_average_end", load_average())
    result.setdefault("peak_rss_gb_self", peak_rss_gb())
    text = json.dumps(result, indent=2, default=float)
    if path is None:
        print(text)
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text + "\n", encoding="utf-8")
    os.replace(partial, target)

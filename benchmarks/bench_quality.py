"""Train with the Numba kernels and again with the paths they replaced; compare validation AUC.

Run as ``python benchmarks/bench_quality.py --scale small --max-impressions 20000 [--epochs 1] [--out result.json]``.

Both runs start from the same weights (the model's seed) and see the same batches and dropout
masks, so their validation AUC and their weights may differ only by floating-point rounding. The
replaced paths are SciPy graph aggregation, ``score_logits`` composed of separate autograd
operations, and padded scoring in ``predict`` (``reference_paths.unoptimised``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import tempfile
import time

import numpy as np

from common import CACHE, load_average, logger, prepare_run, setup_logging, write_result
from minirec.model.recommender import Recommender
from minirec.train.trainer import Trainer
from reference_paths import unoptimised


def train(options, prepared, label: str, epochs: int) -> tuple[Recommender, dict]:
    """Train ``epochs`` epochs from the seeded initial weights; return the model and its measurements."""
    model = Recommender(copy.deepcopy(options.model), prepared.inputs)
    with tempfile.TemporaryDirectory(prefix=f"quality-{label}-", dir=CACHE) as out:
        trainer = Trainer(model, prepared.train_set, prepared.valid_set, options.train, out, prepared.user_ids,
                          progress=False)
        load = load_average()
        started = time.perf_counter()
        for _ in range(epochs):
            trainer.run_epoch()
        seconds = time.perf_counter() - started
    summary = trainer.history[-1]
    logger.info("%s: validation AUC %.4f after %d epoch(s)", label, summary.validation["auc"], epochs)
    return model, {
        "validation_auc": round(summary.validation["auc"], 4),
        "validation_auc_per_epoch": [round(h.validation["auc"], 4) for h in trainer.history],
        "validation_mrr": round(summary.validation["mrr"], 4),
        "epoch_loss": round(summary.loss, 4),
        "training_seconds": round(sum(h.seconds for h in trainer.history), 1),
        "seconds_with_validation": round(seconds, 1),
        "load_average_start": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", help="generated dataset scale (default small)")
    parser.add_argument("--max-impressions", type=int, default=None,
                        help="train on the latest N training impressions (default: all)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs to train each time (default 1)")
    parser.add_argument("--out", default=None, help="JSON result file (default: standard output)")
    args = parser.parse_args()
    setup_logging()

    options, prepared, preparation = prepare_run(args.scale, args.max_impressions)
    result = {"benchmark": "quality", "scale": args.scale, "epochs": args.epochs,
              "train_impressions": len(prepared.train_set), "validation_impressions": len(prepared.valid_set),
              **preparation}
    models = {}
    for label, context in (("kernels", contextlib.nullcontext()), ("unoptimised", unoptimised())):
        with context:
            models[label], result[label] = train(options, prepared, label, args.epochs)
    result["auc_difference"] = round(abs(result["kernels"]["validation_auc"] - result["unoptimised"]["validation_auc"]), 4)
    trained, reference = models["kernels"].state_dict(), models["unoptimised"].state_dict()
    result["max_weight_difference"] = float(max(np.abs(trained[name] - reference[name]).max() for name in trained))
    write_result(args.out, result)


if __name__ == "__main__":
    main()

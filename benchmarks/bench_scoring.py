"""Time the evaluation of a whole dev split: news encoding, Recommender.predict and MIND's metrics.

Run as ``python benchmarks/bench_scoring.py --scale small [--compare N] [--out result.json]``.

The model is untrained (its weights do not change the cost). ``model.predict(dev)`` is timed as
one call, news encoding included, and news encoding alone once more for the breakdown. The padded
path that ``predict`` replaced runs on the first ``--compare`` dev impressions beside the current
one, and the largest difference between their scores is reported.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from common import load_average, logger, peak_rss_gb, prepare_run, setup_logging, write_result
from minirec.eval.metrics import evaluate
from minirec.model.recommender import Recommender
from minirec.train.batches import ImpressionSet
from reference_paths import padded_predict


def head(impressions: ImpressionSet, count: int) -> ImpressionSet:
    """Return the first ``count`` impressions as their own set."""
    return ImpressionSet(
        impression_ids=impressions.impression_ids[:count],
        user_rows=impressions.user_rows[:count],
        histories=impressions.histories[:count],
        candidates=impressions.candidates[:count],
        labels=impressions.labels[:count] if impressions.labels is not None else None,
        times=impressions.times[:count],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", help="generated dataset scale (default small)")
    parser.add_argument("--compare", type=int, default=10000,
                        help="dev impressions scored by both the padded and the current path (default 10000)")
    parser.add_argument("--out", default=None, help="JSON result file (default: standard output)")
    args = parser.parse_args()
    setup_logging()

    options, prepared, preparation = prepare_run(args.scale)
    dev = prepared.report_set
    model = Recommender(options.model, prepared.inputs)
    candidates = int(sum(len(c) for c in dev.candidates))
    pairs = len({(user, history.tobytes()) for user, history in zip(dev.user_rows.tolist(), dev.histories)})
    result = {"benchmark": "scoring", "scale": args.scale, "dev_impressions": len(dev), "dev_candidates": candidates,
              "distinct_user_history_pairs": pairs,
              "mean_history_length": round(float(np.mean([len(h) for h in dev.histories])), 1),
              "catalogue_news": len(prepared.inputs.catalog) - 1, "peak_rss_gb_after_prepare": peak_rss_gb(),
              **preparation}

    model.predict(head(dev, 200))  # compiles or loads the Numba kernels
    result["load_average_start"] = load_average()
    cpu_started, started = time.process_time(), time.perf_counter()
    scores = model.predict(dev)
    predict_seconds = time.perf_counter() - started
    predict_cpu = time.process_time() - cpu_started
    started = time.perf_counter()
    metrics = evaluate(dev.labels, scores)
    metrics_seconds = time.perf_counter() - started
    started = time.perf_counter()
    news_vectors, _ = model.encode_news(np.arange(len(prepared.inputs.catalog)))
    encode_seconds = time.perf_counter() - started
    logger.info("predicted %d dev impressions in %.1f s", len(dev), predict_seconds)

    result.update({
        "predict_seconds": round(predict_seconds, 2),
        "predict_cpu_seconds": round(predict_cpu, 2),
        "of_which_news_encoding_seconds": round(encode_seconds, 2),
        "metrics_seconds": round(metrics_seconds, 2),
        "evaluation_seconds": round(predict_seconds + metrics_seconds, 2),
        "candidates_per_second": round(candidates / predict_seconds),
        "seconds_per_1000_impressions": round(1000 * predict_seconds / len(dev), 3),
        "untrained_auc": round(metrics.auc, 4),
        "peak_rss_gb_after_predict": peak_rss_gb(),
    })

    subset = head(dev, min(args.compare, len(dev)))
    subset_candidates = int(sum(len(c) for c in subset.candidates))
    started = time.perf_counter()
    current = model.predict(subset, news_vectors=news_vectors)
    current_seconds = time.perf_counter() - started
    started = time.perf_counter()
    padded = padded_predict(model, subset, news_vectors=news_vectors)
    padded_seconds = time.perf_counter() - started
    result["comparison"] = {
        "impressions": len(subset),
        "candidates": subset_candidates,
        "current_seconds": round(current_seconds, 2),
        "padded_seconds": round(padded_seconds, 2),
        "speedup": round(padded_seconds / current_seconds, 2),
        "padded_full_split_estimate_seconds": round(encode_seconds + padded_seconds * candidates / subset_candidates, 1),
        "max_abs_score_difference": float(max(np.abs(a - b).max() for a, b in zip(current, padded))),
        "note": "news vectors passed in; the full-split estimate scales the padded time by candidates and adds news encoding",
    }
    write_result(args.out, result)


if __name__ == "__main__":
    main()

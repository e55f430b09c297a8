"""Measure each Numba kernel against its NumPy/SciPy reference on the shapes that training and scoring use.

Run as ``python benchmarks/bench_kernels.py --scale small [--batches 20] [--out result.json]``.

* Graph aggregation: the GraphSAGE blocks of ``--batches`` training batches, forward (A @ X) and
  backward (A.T @ G, transpose included), against SciPy. The threaded kernel runs on the same
  blocks and on the whole news-entity graph.
* Grouped scoring: every candidate of the dev split against random user and news vectors, against
  the NumPy reference and against the padded path (gather padded candidates, normalise, multiply,
  sum, sigmoid in batches of 256 impressions).
* Training scores: ``score_logits`` forward and backward on the padded candidate arrays of training
  batches, against the composition of autograd operations it replaced.

Each timing is the fastest of ``--repeats`` runs; the first call of every kernel (compilation or
loading from Numba's cache) is not timed.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import numpy as np

from common import best_time, load_average, logger, prepare_run, setup_logging, write_result
from minirec.autograd import Tensor, no_grad, ops
from minirec.autograd import functional as F
from minirec.eval.scoring import concatenate_groups, score_grouped, score_grouped_reference
from minirec.graph import kernels
from minirec.model.graphsage import build_blocks
from minirec.model.recommender import Recommender
from minirec.train.batches import batch_order, make_batch
from reference_paths import composed_score_logits


REFERENCE_CHUNK = 5000


def speedup(reference: float, kernel: float) -> float:
    return round(reference / kernel, 2) if kernel > 0 else float("inf")


def graph_blocks(prepared, count: int, batch_size: int):
    """Return the GraphSAGE blocks of the first ``count`` training batches, with their feature widths."""
    inputs = prepared.inputs
    catalog = inputs.catalog
    entity_dim = inputs.entity_init.shape[1]
    blocks = []
    for indices in batch_order(len(prepared.train_set), batch_size, np.random.default_rng(0))[:count]:
        rows = make_batch(prepared.train_set, indices).news_rows
        _, layers = build_blocks(inputs.adjacency, rows[catalog.has_row[rows]], 2)
        # The first layer reads entity_dim-wide inputs and the second the 256-wide hidden vectors.
        blocks.extend(zip((layer.adjacency for layer in layers), (entity_dim, 256)))
    return blocks


def bench_graph(prepared, count: int, batch_size: int, repeats: int) -> dict:
    rng = np.random.default_rng(1)
    totals = dict.fromkeys(("scipy_forward", "numba_forward", "threaded_forward",
                            "scipy_backward", "numba_backward"), 0.0)
    entries = 0
    for matrix, width in graph_blocks(prepared, count, batch_size):
        indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
        n_rows, n_cols = matrix.shape
        X = rng.standard_normal((n_cols, width)).astype(np.float32)
        G = rng.standard_normal((n_rows, width)).astype(np.float32)
        threaded = kernels._forward_parallel
        out = np.empty((n_rows, width), dtype=np.float32)
        # The first calls compile or load the kernels for these dtypes.
        kernels.csr_mean_aggregate(indptr, indices, data, X)
        kernels.csr_mean_aggregate_transpose(indptr, indices, data, G, n_cols)
        threaded(indptr, indices, data, X, out)

        totals["scipy_forward"] += best_time(lambda: matrix @ X, repeats)
        totals["numba_forward"] += best_time(lambda: kernels.csr_mean_aggregate(indptr, indices, data, X), repeats)
        totals["threaded_forward"] += best_time(lambda: threaded(indptr, indices, data, X, out), repeats)
        # The SciPy path of sparse_matmul built the transpose once per block, as a block serves one step.
        totals["scipy_backward"] += best_time(lambda: matrix.T.tocsr() @ G, repeats)
        totals["numba_backward"] += best_time(
            lambda: kernels.csr_mean_aggregate_transpose(indptr, indices, data, G, n_cols), repeats)
        entries += matrix.nnz
    blocks = 2 * count
    return {
        "blocks": blocks,
        "mean_entries_per_block": round(entries / blocks),
        "ms_per_training_batch": {name: round(1000 * value / count, 3) for name, value in totals.items()},
        "speedup_forward": speedup(totals["scipy_forward"], totals["numba_forward"]),
        "speedup_backward": speedup(totals["scipy_backward"], totals["numba_backward"]),
        "threaded_over_serial_forward": speedup(totals["numba_forward"], totals["threaded_forward"]),
    }


def bench_whole_graph(prepared, repeats: int) -> dict:
    """Time the product with the whole news-entity adjacency, where the threads have work to share."""
    matrix = prepared.inputs.adjacency.tocsr()
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    X = np.random.default_rng(2).standard_normal((matrix.shape[1], 256)).astype(np.float32)
    out = np.empty((matrix.shape[0], 256), dtype=np.float32)
    kernels._forward_serial(indptr, indices, data, X, out)
    kernels._forward_parallel(indptr, indices, data, X, out)
    scipy_seconds = best_time(lambda: matrix @ X, repeats)
    serial = best_time(lambda: kernels._forward_serial(indptr, indices, data, X, out), repeats)
    threaded = best_time(lambda: kernels._forward_parallel(indptr, indices, data, X, out), repeats)
    return {
        "shape": list(matrix.shape),
        "entries": int(matrix.nnz),
        "width": 256,
        "ms": {"scipy": round(1000 * scipy_seconds, 2), "numba_serial": round(1000 * serial, 2),
               "numba_threaded": round(1000 * threaded, 2)},
        "threaded_over_serial": speedup(serial, threaded),
    }


def bench_grouped_scoring(prepared, repeats: int) -> dict:
    impressions = prepared.report_set
    dim = 256
    rng = np.random.default_rng(3)
    news = rng.standard_normal((len(prepared.inputs.catalog), dim)).astype(np.float32)
    users = rng.standard_normal((len(impressions), dim)).astype(np.float32)
    rows, offsets = concatenate_groups(impressions.candidates)
    tau = 2.0
    score_grouped(users[:2], news, rows[:offsets[2]], offsets[:3], tau, apply_sigmoid=True)

    kernel = best_time(lambda: score_grouped(users, news, rows, offsets, tau, apply_sigmoid=True), repeats)

    def reference_in_chunks():
        # All at once, the reference's gathered and repeated (candidates, dim) copies took 9.9 GB at
        # the small scale. Chunks of REFERENCE_CHUNK impressions keep them to a few hundred MB.
        for start in range(0, len(impressions), REFERENCE_CHUNK):
            stop = min(start + REFERENCE_CHUNK, len(impressions))
            chunk_offsets = offsets[start:stop + 1] - offsets[start]
            chunk_rows = rows[offsets[start]:offsets[stop]]
            score_grouped_reference(users[start:stop], news, chunk_rows, chunk_offsets, tau, apply_sigmoid=True)

    reference = best_time(reference_in_chunks, max(1, repeats // 2))

    owner = SimpleNamespace(config=SimpleNamespace(tau=tau))
    table = Tensor(news)

    def padded():
        with no_grad():
            for indices in batch_order(len(impressions), 256, None):
                batch = make_batch(impressions, indices)
                candidates = ops.take_rows(table, batch.news_rows[batch.candidate_position])
                F.sigmoid(composed_score_logits(owner, Tensor(users[indices]), candidates))

    padded_seconds = best_time(padded, 1)
    candidates = len(rows)
    return {
        "impressions": len(impressions),
        "candidates": candidates,
        "seconds": {"numba": round(kernel, 4), "numpy_reference": round(reference, 3),
                    "padded_batches": round(padded_seconds, 2)},
        "candidates_per_second_numba": round(candidates / kernel),
        "speedup_over_reference": speedup(reference, kernel),
        "speedup_over_padded": speedup(padded_seconds, kernel),
    }


def bench_training_scores(prepared, count: int, batch_size: int, repeats: int) -> dict:
    """Time score_logits forward + backward on the padded candidate arrays of training batches."""
    rng = np.random.default_rng(4)
    owner = SimpleNamespace(config=SimpleNamespace(tau=2.0))
    fused_total = composed_total = 0.0
    widths = []
    for indices in batch_order(len(prepared.train_set), batch_size, np.random.default_rng(0))[:count]:
        batch = make_batch(prepared.train_set, indices)
        shape = batch.candidate_position.shape + (256,)
        widths.append(shape[1])
        users = rng.standard_normal((shape[0], 256)).astype(np.float32)
        candidates = rng.standard_normal(shape).astype(np.float32)
        upstream = rng.standard_normal(shape[:2]).astype(np.float32)

        def step(score):
            u, c = Tensor(users, requires_grad=True), Tensor(candidates, requires_grad=True)
            score(owner, u, c).backward(upstream)

        step(Recommender.score_logits)
        fused_total += best_time(lambda: step(Recommender.score_logits), repeats)
        composed_total += best_time(lambda: step(composed_score_logits), repeats)
    return {
        "batches": count,
        "mean_padded_width": round(float(np.mean(widths)), 1),
        "ms_per_batch": {"fused_kernels": round(1000 * fused_total / count, 2),
                         "composed_operations": round(1000 * composed_total / count, 2)},
        "speedup": speedup(composed_total, fused_total),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", help="generated dataset scale (default small)")
    parser.add_argument("--batches", type=int, default=20, help="training batches whose shapes are used (default 20)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement; the fastest counts")
    parser.add_argument("--out", default=None, help="JSON result file (default: standard output)")
    args = parser.parse_args()
    setup_logging()

    options, prepared, preparation = prepare_run(args.scale)
    batch_size = options.train.batch_size
    result = {"benchmark": "kernels", "scale": args.scale, "numba_threads": kernels.numba.get_num_threads(),
              "parallel_min_work": kernels.PARALLEL_MIN_WORK, **preparation}
    for name, run in (
        ("graph_blocks", lambda: bench_graph(prepared, args.batches, batch_size, args.repeats)),
        ("whole_graph", lambda: bench_whole_graph(prepared, args.repeats)),
        ("grouped_scoring", lambda: bench_grouped_scoring(prepared, args.repeats)),
        ("training_scores", lambda: bench_training_scores(prepared, args.batches, batch_size, args.repeats)),
    ):
        load = load_average()
        started = time.perf_counter()
        result[name] = run()
        result[name]["load_average_start"] = load
        logger.info("%s measured in %.0f s", name, time.perf_counter() - started)
    write_result(args.out, result)


if __name__ == "__main__":
    main()

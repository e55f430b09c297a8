"""Time training steps with changes proposed for the autograd engine and the model, which minirec does not make yet.

Run as ``python benchmarks/bench_proposals.py --scale small [--batches 40] [--out result.json]``.

Each variant adds one change to the previous one, swapped in for this process only:

1. ``matmul-no-copies``: the backward rule of a 2-D matrix product passes the transposed operands to
   BLAS as they are, instead of copying them into contiguous arrays first.
2. ``scatter-kernel``: the backward rule of ``take_rows`` on an intermediate table adds rows with a
   Numba loop instead of ``np.add.at``.
3. ``valid-candidates``: the forward pass gathers and scores only the real candidates of a batch
   (users repeated per candidate), and spreads the logits over the padded (impression, candidate)
   array afterwards. Padding positions get a logit of 0, which the loss masks out anyway.

All variants time the same batches after the same warm-up, so the differences come from the changes
and from the machine's load, which is recorded per variant.
"""

from __future__ import annotations

import argparse
import collections

import numba
import numpy as np

from bench_training import timed_step
from common import load_average, prepare_run, setup_logging, write_result
from minirec.autograd import RowSparseGrad, Tensor, ops
from minirec.model.recommender import Recommender
from minirec.optim import AdamW
from minirec.train.batches import batch_order


@numba.njit(cache=True)
def _scatter_add_rows(grad, indices, values):
    for i in range(len(indices)):
        row = grad[indices[i]]
        source = values[i]
        for k in range(len(row)):
            row[k] += source[k]


def matmul_without_copies(original):
    def matmul(a, b):
        a, b = ops._pair(a, b)
        if a.ndim != 2 or b.ndim != 2:
            return original(a, b)

        def backward(g):
            return (g @ b.data.T if a.requires_grad else None, a.data.T @ g if b.requires_grad else None)

        return Tensor.from_op(a.data @ b.data, (a, b), backward)

    return matmul


def take_rows_with_scatter_kernel(table: Tensor, indices) -> Tensor:
    indices = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    row_shape = table.shape[1:]

    def backward(g):
        flat = np.ascontiguousarray(g.reshape((-1,) + row_shape))
        if table._backward is None:
            return (RowSparseGrad(indices.reshape(-1), flat, table.shape),)
        grad = np.zeros_like(table.data)
        _scatter_add_rows(grad.reshape(len(grad), -1), indices.reshape(-1), flat.reshape(len(flat), -1))
        return (grad,)

    return Tensor.from_op(table.data[indices], (table,), backward)


def forward_on_valid_candidates(model, batch):
    """Compute ``Recommender.forward`` while gathering only the real candidates of the batch."""
    news, view_weights = model.news_encoder(batch.news_rows)
    history = ops.take_rows(news, batch.history_position)
    users, _ = model.user_encoder(batch.user_rows, history, batch.history_mask, batch.history_age)
    owner, slot = np.nonzero(batch.candidate_mask)
    candidates = ops.take_rows(news, batch.candidate_position[owner, slot]).reshape(len(owner), 1, -1)
    flat_logits = model.score_logits(ops.take_rows(users, owner), candidates).reshape(-1)
    # Position 0 of ``padded`` is a constant 0 logit for every padding slot.
    padded = ops.concat([Tensor(np.zeros(1, dtype=flat_logits.dtype)), flat_logits])
    index = np.zeros(batch.candidate_mask.shape, dtype=np.int64)
    index[owner, slot] = np.arange(1, len(owner) + 1)
    return ops.take_rows(padded, index), view_weights


def time_variant(options, prepared, batches, warm_up) -> dict:
    model = Recommender(options.model, prepared.inputs)
    model.train()
    optimizer = AdamW(model.named_parameters(), lr=options.train.lr, weight_decay=options.train.weight_decay)
    phases: dict[str, float] = collections.defaultdict(float)
    for indices in warm_up:
        timed_step(model, optimizer, prepared.train_set, indices, options.train.clip_norm, phases)
    phases.clear()
    load = load_average()
    for indices in batches:
        timed_step(model, optimizer, prepared.train_set, indices, options.train.clip_norm, phases)
    total = sum(phases.values())
    return {
        "seconds_per_batch": round(total / len(batches), 4),
        "phases_seconds_per_batch": {name: round(value / len(batches), 4) for name, value in phases.items()},
        "load_average_start": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", help="generated dataset scale (default small)")
    parser.add_argument("--batches", type=int, default=40, help="batches timed per variant (default 40)")
    parser.add_argument("--out", default=None, help="JSON result file (default: standard output)")
    args = parser.parse_args()
    setup_logging()

    options, prepared, preparation = prepare_run(args.scale)
    order = batch_order(len(prepared.train_set), options.train.batch_size, np.random.default_rng([options.train.seed, 1]))
    warm_up, batches = order[-3:], order[:args.batches]
    result = {"benchmark": "proposals", "scale": args.scale, "batches": len(batches), **preparation}

    original_matmul = ops.matmul
    result["baseline"] = time_variant(options, prepared, batches, warm_up)
    ops.matmul = matmul_without_copies(original_matmul)
    result["matmul-no-copies"] = time_variant(options, prepared, batches, warm_up)
    ops.take_rows = take_rows_with_scatter_kernel
    result["scatter-kernel"] = time_variant(options, prepared, batches, warm_up)
    Recommender.forward = forward_on_valid_candidates
    result["valid-candidates"] = time_variant(options, prepared, batches, warm_up)
    write_result(args.out, result)


if __name__ == "__main__":
    main()

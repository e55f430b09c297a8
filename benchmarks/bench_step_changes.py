"""Time training steps with and without two changes to the autograd engine's backward rules.

Run as ``python benchmarks/bench_step_changes.py --scale small [--batches 40] [--out result.json]``.

minirec's engine now has both changes. For the ``before`` variants, this process swaps the earlier
rules back in:

1. ``matmul-copies``: the backward rule of a 2-D matrix product copied both transposed operands into
   contiguous arrays before calling BLAS. Now it passes the transposed views, which BLAS reads in place.
2. ``add-at``: the backward rule of ``take_rows`` on an intermediate table added rows with
   ``np.add.at``. Now a Numba loop does it (:mod:`minirec.autograd.kernels`).

The variants are: ``before`` (both earlier rules), ``matmul`` (only the scatter rule earlier), and
``now``. All variants time the same batches after the same warm-up, so the differences come from the
changes and from the machine's load, which is recorded per variant.
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from bench_training import timed_step
from common import load_average, prepare_run, setup_logging, write_result
from minirec.autograd import RowSparseGrad, Tensor, ops
from minirec.model.recommender import Recommender
from minirec.optim import AdamW
from minirec.train.batches import batch_order


def matmul_with_copies(current):
    """Return ``matmul`` whose 2-D backward rule copies the transposed operands first."""
    def matmul(a, b):
        a, b = ops._pair(a, b)
        if a.ndim != 2 or b.ndim != 2:
            return current(a, b)

        def backward(g):
            g = np.ascontiguousarray(g)
            grad_a = g @ np.ascontiguousarray(b.data.T) if a.requires_grad else None
            grad_b = np.ascontiguousarray(a.data.T) @ g if b.requires_grad else None
            return grad_a, grad_b

        return Tensor.from_op(a.data @ b.data, (a, b), backward)

    return matmul


def take_rows_with_add_at(table: Tensor, indices) -> Tensor:
    """``take_rows`` whose backward rule for an intermediate table uses ``np.add.at``."""
    indices = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    row_shape = table.shape[1:]

    def backward(g):
        flat = g.reshape((-1,) + row_shape)
        if table._backward is None:
            return (RowSparseGrad(indices.reshape(-1), flat, table.shape),)
        grad = np.zeros_like(table.data)
        np.add.at(grad, indices.reshape(-1), flat)
        return (grad,)

    return Tensor.from_op(table.data[indices], (table,), backward)


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
    result = {"benchmark": "step-changes", "scale": args.scale, "batches": len(batches), **preparation}

    current_matmul, current_take_rows = ops.matmul, ops.take_rows
    ops.matmul, ops.take_rows = matmul_with_copies(current_matmul), take_rows_with_add_at
    result["before"] = time_variant(options, prepared, batches, warm_up)
    ops.matmul = current_matmul
    result["matmul"] = time_variant(options, prepared, batches, warm_up)
    ops.take_rows = current_take_rows
    result["now"] = time_variant(options, prepared, batches, warm_up)
    write_result(args.out, result)


if __name__ == "__main__":
    main()

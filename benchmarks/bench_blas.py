"""Time the matrix products of a Linear layer's forward and backward pass with the BLAS NumPy uses.

Run as ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_blas.py`` and again with 2 threads: OpenBLAS
reads the variable when NumPy is imported, so each setting needs its own process. The shape is the
query projection of a training batch: 64 histories of 50 clicks, 256 wide.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from common import best_time, load_average, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3200, help="rows of the input (default 3200 = 64 x 50)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs; the fastest counts (default 20)")
    parser.add_argument("--out", default=None, help="JSON result file (default: standard output)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, 256)).astype(np.float32)
    weight = rng.standard_normal((256, 256)).astype(np.float32)
    upstream = rng.standard_normal((args.rows, 256)).astype(np.float32)

    def forward_and_backward():
        x @ weight
        upstream @ weight.T
        x.T @ upstream

    load = load_average()
    seconds = best_time(forward_and_backward, args.repeats)
    flops = 3 * 2 * args.rows * 256 * 256
    write_result(args.out, {
        "benchmark": "blas",
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
        "shape": [args.rows, 256, 256],
        "ms": round(1000 * seconds, 2),
        "gflops": round(flops / seconds / 1e9, 1),
        "load_average_start": load,
    })


if __name__ == "__main__":
    main()

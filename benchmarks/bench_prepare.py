"""Time data preparation as ``minirec-train`` runs it: reading, the LSA fit, the news–entity graph, encoding.

Run as ``python benchmarks/bench_prepare.py --scale small [--out result.json]``.

This job always fits LSA (the other benchmarks load the vectors it saves), so its time and peak
memory are those of a real run's preparation, graph construction included.
"""

from __future__ import annotations

import argparse
import time

from common import (CACHE, ensure_data, load_average, peak_rss_gb, save_text_vectors, setup_logging, text_vectors_path,
                    write_result)
from minirec.model.config import ModelConfig, TrainConfig
from minirec.train.pipeline import RunOptions, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", help="generated dataset scale (default small)")
    parser.add_argument("--out", default=None, help="JSON result file (default: standard output)")
    args = parser.parse_args()
    setup_logging()

    folder = ensure_data(args.scale)
    options = RunOptions(data=folder, out=CACHE / "out" / args.scale, model=ModelConfig(), train=TrainConfig(),
                         progress=False)
    load = load_average()
    started = time.perf_counter()
    prepared = prepare(options)
    seconds = time.perf_counter() - started
    vectors = text_vectors_path(args.scale)
    if not vectors.is_file():
        save_text_vectors(prepared, vectors)
    graph = prepared.summary.get("graph", {})
    write_result(args.out, {
        "benchmark": "prepare",
        "scale": args.scale,
        "prepare_seconds": round(seconds, 1),
        "train_impressions": len(prepared.train_set),
        "catalogue_news": len(prepared.inputs.catalog) - 1,
        "graph_entities": graph.get("entities"),
        "graph_edges": graph.get("edges"),
        "text_source": prepared.summary.get("text_source"),
        "peak_rss_gb_after_prepare": peak_rss_gb(),
        "load_average_start": load,
    })


if __name__ == "__main__":
    main()

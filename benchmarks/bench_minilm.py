"""Measure MiniLMEncoder throughput on MIND-like news texts.

Run as ``python benchmarks/bench_minilm.py [--texts N] [--batch-size B] [--workers W] [--repeats R]``.
Texts are built as "Category: ... - ... | Title: ... | Abstract: ..." from the MIND sample
under ../shared/data when it exists, and generated from a fixed word list otherwise. The load
average is printed with the result, because other processes on the machine slow the encoder.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from pathlib import Path

import numpy as np

from minirec.text.minilm import MiniLMEncoder

NEWS_TSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "mind_sample" / "train" / "news.tsv"

_WORDS = (
    "city council vote budget school storm weather team coach season market stocks rally shares "
    "police report election senator governor health study doctors patients travel airline flight "
    "recipe dinner restaurant chef movie actor award music album concert football playoff injury "
    "company earnings quarter price oil energy climate court judge ruling family home community"
).split()


def load_news_texts(limit: int) -> tuple[list[str], str]:
    """Return up to ``limit`` texts from the MIND sample and a description of their origin."""
    texts = []
    with NEWS_TSV.open(encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 5:
                continue
            category, subcategory, title, abstract = fields[1:5]
            texts.append(f"Category: {category} - {subcategory} | Title: {title} | Abstract: {abstract}")
            if len(texts) == limit:
                break
    return texts, f"{NEWS_TSV} (first {len(texts)} rows)"


def generate_texts(count: int, seed: int = 0) -> tuple[list[str], str]:
    """Return ``count`` synthetic texts with MIND-like length: a 10-word title and a 35-word abstract."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        title = " ".join(rng.choice(_WORDS) for _ in range(10)).capitalize()
        abstract = " ".join(rng.choice(_WORDS) for _ in range(35)).capitalize() + "."
        texts.append(f"Category: news - newsus | Title: {title} | Abstract: {abstract}")
    return texts, f"{count} generated texts (seed {seed})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000, help="number of texts to encode (default 1000)")
    parser.add_argument("--batch-size", type=int, default=None, help="texts per forward pass (default: the encoder's)")
    parser.add_argument("--workers", type=int, default=None, help="encoding threads (default: one per CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the fastest is reported (default 3)")
    args = parser.parse_args()

    if NEWS_TSV.is_file():
        texts, origin = load_news_texts(args.texts)
    else:
        texts, origin = generate_texts(args.texts)

    options = {"workers": args.workers}
    if args.batch_size is not None:
        options["batch_size"] = args.batch_size
    encoder = MiniLMEncoder(**options)
    tokens = np.array([len(encoder.tokenizer.encode(text)) for text in texts])
    encoder.encode(texts[:32])  # warm-up: compiles or loads the Numba kernels and pages in the weights

    timings, cpu_times = [], []
    for _ in range(args.repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        encoder.encode(texts)
        timings.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    best = int(np.argmin(timings))

    print(f"texts: {origin}")
    print(f"tokens per text: mean {tokens.mean():.1f}, median {np.median(tokens):.0f}, max {tokens.max()}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, NumPy {np.__version__}")
    print(f"encoder: batch size {encoder.batch_size}, {encoder.workers} workers")
    print(f"load average over the last minute, after the runs: {os.getloadavg()[0]:.2f}")
    print(f"runs (s): {', '.join(f'{t:.2f}' for t in timings)}")
    print(f"throughput: {len(texts) / timings[best]:.1f} texts/s, {tokens.sum() / timings[best]:.0f} tokens/s (fastest of {args.repeats})")
    print(f"CPU time of that run: {cpu_times[best]:.2f} s, {len(texts) / cpu_times[best]:.1f} texts per CPU-second")


if __name__ == "__main__":
    main()

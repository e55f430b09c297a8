"""Time training steps at one scale and show where a step's time goes.

Run as ``python benchmarks/bench_training.py --scale small [--max-impressions N] [--batches N | --full-epoch]``.

Timed steps repeat ``Trainer.train_step`` with a timer around each piece: building the batch
(``make_batch``), the forward pass and loss, the backward pass, and gradient clipping with the
AdamW step. Wrappers on the model's modules split the forward pass further (news encoder, its
graph view, user encoder, scoring) without changing any model file. A first few steps warm up
Numba's compiled kernels and are not counted.

With ``--batches N`` the first N batches of the epoch's shuffled order are timed and the epoch
time is extrapolated from their mean: an estimate. With ``--full-epoch`` the real
``Trainer.run_epoch`` runs every batch and then evaluates the validation split, as training does.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import tempfile
import time

import numpy as np

from common import CACHE, load_average, logger, peak_rss_gb, prepare_run, setup_logging, write_result
from minirec.autograd import Tensor
from minirec.autograd import functional as F
from minirec.model.recommender import Recommender
from minirec.optim import AdamW, clip_grad_norm
from minirec.train.batches import batch_order, make_batch
from minirec.train.trainer import Trainer

WARM_UP_STEPS = 3
PHASES = ("batch", "forward", "backward", "optimizer")
FORWARD_PARTS = ("news_encoder", "graph_view", "user_encoder", "score_logits")


class Timers:
    """Seconds and calls per named piece of a step."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.calls = collections.defaultdict(int)

    def wrap(self, name: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed


def instrument(model: Recommender, timers: Timers) -> None:
    """Time the forward pieces of ``model`` by wrapping its instance methods (the class is untouched)."""
    encoder = model.news_encoder
    encoder.forward = timers.wrap("news_encoder", encoder.forward)
    if "graph" in model.config.views:
        encoder._graph_view = timers.wrap("graph_view", encoder._graph_view)
    model.user_encoder.forward = timers.wrap("user_encoder", model.user_encoder.forward)
    model.score_logits = timers.wrap("score_logits", model.score_logits)


class BackwardProfile:
    """Time every backward rule by the name of the operation that recorded it, and count matmul FLOPs.

    ``Tensor.from_op`` is replaced while the profile is active; the caller's name (``matmul``,
    ``take_rows``, ...) labels the rule. A product (..., n, k) @ (k, m) costs 2 n k m FLOPs forward
    and at most twice that backward (one product per operand that needs a gradient), so the count
    is an upper bound.
    """

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.matmul_flops = 0
        self._original = None

    def __enter__(self):
        original = self._original = Tensor.from_op
        seconds = self.seconds

        def from_op(data, parents, backward):
            name = sys._getframe(1).f_code.co_name
            if name == "matmul":
                self.matmul_flops += 3 * 2 * data.size * parents[0].shape[-1]

            def timed_backward(g):
                started = time.perf_counter()
                result = backward(g)
                seconds[name] += time.perf_counter() - started
                return result

            return original(data, parents, timed_backward)

        Tensor.from_op = staticmethod(from_op)
        return self

    def __exit__(self, *exc):
        Tensor.from_op = self._original


def timed_step(model, optimizer, train_set, indices, clip_norm, phases: dict[str, float]) -> float:
    """Run one training step as ``Trainer.train_step`` does, adding each phase's seconds to ``phases``."""
    started = time.perf_counter()
    batch = make_batch(train_set, indices)
    built = time.perf_counter()
    logits, _ = model(batch)
    loss = F.binary_cross_entropy_with_logits(logits, batch.labels, batch.candidate_mask)
    forwarded = time.perf_counter()
    optimizer.zero_grad()
    loss.backward()
    backwarded = time.perf_counter()
    clip_grad_norm(model.parameters(), clip_norm)
    optimizer.step()
    finished = time.perf_counter()
    for name, seconds in zip(PHASES, (built - started, forwarded - built, backwarded - forwarded, finished - backwarded)):
        phases[name] += seconds
    return loss.item()


def time_batches(options, prepared, count: int, profile_steps: int) -> dict:
    model = Recommender(options.model, prepared.inputs)
    model.train()
    optimizer = AdamW(model.named_parameters(), lr=options.train.lr, weight_decay=options.train.weight_decay)
    train_set = prepared.train_set
    batches = batch_order(len(train_set), options.train.batch_size, np.random.default_rng([options.train.seed, 1]))
    warm_up = batches[-WARM_UP_STEPS:]  # the last batches of the order, so the timed ones are the first
    timed = batches[:min(count, len(batches) - WARM_UP_STEPS)]

    scratch: dict[str, float] = collections.defaultdict(float)
    for indices in warm_up:
        timed_step(model, optimizer, train_set, indices, options.train.clip_norm, scratch)

    timers = Timers()
    instrument(model, timers)
    phases: dict[str, float] = collections.defaultdict(float)
    load_start = load_average()
    cpu_started, started = time.process_time(), time.perf_counter()
    losses = [timed_step(model, optimizer, train_set, indices, options.train.clip_norm, phases) for indices in timed]
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    forward_parts = dict(timers.seconds)  # before the profiled steps add to the timers
    impressions = int(sum(len(indices) for indices in timed))

    profile = BackwardProfile()
    profiled = batches[len(timed):len(timed) + profile_steps]
    with profile:
        for indices in profiled:
            timed_step(model, optimizer, train_set, indices, options.train.clip_norm, scratch)

    per_batch = seconds / len(timed)
    epoch_batches = len(batches)
    return {
        "mode": f"first {len(timed)} batches, extrapolated to the epoch",
        "timed_batches": len(timed),
        "timed_impressions": impressions,
        "timed_seconds": round(seconds, 2),
        "seconds_per_batch": round(per_batch, 4),
        # With one BLAS thread and the serial kernels a step computes on one thread, so its CPU time
        # estimates its wall time on an otherwise idle machine.
        "cpu_seconds_per_batch": round(cpu_seconds / len(timed), 4),
        "impressions_per_second": round(impressions / seconds, 2),
        "epoch_batches": epoch_batches,
        "epoch_seconds_estimate": round(per_batch * epoch_batches, 1),
        "phases_seconds_per_batch": {name: round(phases[name] / len(timed), 4) for name in PHASES},
        "forward_parts_seconds_per_batch": {
            name: round(forward_parts[name] / len(timed), 4) for name in FORWARD_PARTS if name in forward_parts
        },
        "backward_by_op_seconds_per_batch": {
            name: round(value / max(len(profiled), 1), 4)
            for name, value in sorted(profile.seconds.items(), key=lambda item: -item[1])
        },
        "backward_profiled_batches": len(profiled),
        "matmul_gflop_per_batch": round(profile.matmul_flops / max(len(profiled), 1) / 1e9, 2),
        "mean_loss": round(float(np.mean(losses)), 4),
        "load_average_start": load_start,
    }


def run_full_epoch(options, prepared) -> dict:
    model = Recommender(options.model, prepared.inputs)
    # The checkpoints the trainer writes are part of the cost but not of the result.
    with tempfile.TemporaryDirectory(prefix="epoch-", dir=CACHE) as out:
        trainer = Trainer(model, prepared.train_set, prepared.valid_set, options.train, out, prepared.user_ids,
                          progress=False)
        load_start = load_average()
        started = time.perf_counter()
        trainer.run_epoch()  # every batch, then validation and the checkpoint
        total = time.perf_counter() - started
    summary = trainer.history[-1]
    return {
        "mode": "one full epoch with Trainer.run_epoch",
        "epoch_batches": int(np.ceil(len(prepared.train_set) / options.train.batch_size)),
        "training_seconds": round(summary.seconds, 1),
        "validation_and_checkpoint_seconds": round(total - summary.seconds, 1),
        "impressions_per_second": round(len(prepared.train_set) / summary.seconds, 2),
        "epoch_loss": round(summary.loss, 4),
        "validation_auc": round(summary.validation["auc"], 4),
        "load_average_start": load_start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", help="generated dataset scale (default small)")
    parser.add_argument("--max-impressions", type=int, default=None,
                        help="train on the latest N training impressions only (TrainConfig.max_impressions)")
    parser.add_argument("--batches", type=int, default=300, help="batches to time (default 300)")
    parser.add_argument("--profile-steps", type=int, default=10,
                        help="further batches whose backward pass is timed per operation (default 10)")
    parser.add_argument("--full-epoch", action="store_true", help="run one whole epoch with the Trainer instead")
    parser.add_argument("--out", default=None, help="JSON result file (default: standard output)")
    args = parser.parse_args()
    setup_logging()

    options, prepared, preparation = prepare_run(args.scale, args.max_impressions)
    result = {
        "benchmark": "training",
        "scale": args.scale,
        "max_impressions": args.max_impressions,
        "train_impressions": len(prepared.train_set),
        "validation_impressions": len(prepared.valid_set),
        "peak_rss_gb_after_prepare": peak_rss_gb(),
        **preparation,
    }
    logger.info("training on %d impressions (%s scale)", len(prepared.train_set), args.scale)
    if args.full_epoch:
        result.update(run_full_epoch(options, prepared))
    else:
        result.update(time_batches(options, prepared, args.batches, args.profile_steps))
    write_result(args.out, result)


if __name__ == "__main__":
    main()

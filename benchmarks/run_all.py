"""Run every benchmark, each in its own process, and write the measured tables into benchmarks/RESULTS.md.

Run as ``python benchmarks/run_all.py --scale small [--full-epoch] [--only JOB ...]``.

Generated data is cached in ``runs/benchmarks/data`` and made when missing. Each job is a child
process, so its peak resident memory is its own (``os.wait4`` returns the child's resource usage).
Job results are JSON files in ``runs/benchmarks/results``; with ``--only`` the other jobs keep their
last results. The part of RESULTS.md between the two ``measured`` marker lines is replaced, and the
text around it is left as it is.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from common import CACHE, ensure_data, load_average, logger, setup_logging

HERE = Path(__file__).resolve().parent
RESULTS_DIR = CACHE / "results"
RESULTS_MD = HERE / "RESULTS.md"
START_MARK = "<!-- measured:start (written by benchmarks/run_all.py) -->"
END_MARK = "<!-- measured:end -->"

# Reported numbers of the original design: 10 epochs of MIND-small in 3 hours on a Xeon E5-2680 v4
# with 32 GB, 2 s of inference per 1,000 samples, 2 GB of inference memory and 8 GB to build the
# graph. Its PyTorch implementation ran at about 11 to 23 impressions per second on a 2-core machine.
ORIGINAL_EPOCH_MINUTES = 18.0
ORIGINAL_SECONDS_PER_1000 = 2.0
ORIGINAL_INFERENCE_GB = 2.0
ORIGINAL_GRAPH_GB = 8.0
ORIGINAL_PYTORCH_RATE = (11.0, 23.0)
MIND_SMALL_TRAIN_IMPRESSIONS = 156_965

TARGET_EPOCH_MINUTES = 10.0
TARGET_EVALUATION_SECONDS = 60.0
TARGET_TRAINING_GB = 3.0
TARGET_AUC_DIFFERENCE = 0.01
TARGET_LSA_SECONDS = 30.0
TARGET_MINILM_TEXTS_PER_SECOND = 100.0


def jobs(args) -> list[tuple[str, list[str], dict[str, str]]]:
    """Return (name, script arguments, extra environment) of every job, in running order.

    The last job, one full epoch at ``args.scale``, runs only with ``--full-epoch``.
    """
    scale, subset = args.scale, str(args.subset)
    listed = [
        ("prepare", ["bench_prepare.py", "--scale", scale], {}),
        ("blas-1", ["bench_blas.py"], {"OPENBLAS_NUM_THREADS": "1"}),
        ("blas-2", ["bench_blas.py"], {"OPENBLAS_NUM_THREADS": "2"}),
        ("kernels", ["bench_kernels.py", "--scale", scale], {}),
        ("training-demo", ["bench_training.py", "--scale", "demo", "--full-epoch"], {}),
        ("training", ["bench_training.py", "--scale", scale, "--batches", str(args.batches)], {}),
        ("scoring", ["bench_scoring.py", "--scale", scale], {}),
        ("quality", ["bench_quality.py", "--scale", scale, "--max-impressions", subset], {}),
        ("quality-demo", ["bench_quality.py", "--scale", "demo", "--epochs", "3"], {}),
        ("step-changes", ["bench_step_changes.py", "--scale", scale], {}),
        ("text", ["bench_text.py", "--scale", scale], {}),
        ("training-epoch", ["bench_training.py", "--scale", scale, "--full-epoch"], {}),
    ]
    return listed


def run_job(name: str, arguments: list[str], environment: dict[str, str], invocation: str) -> dict:
    """Run one benchmark script as a child process; return its JSON result with wall time and peak RSS."""
    out = RESULTS_DIR / f"{name}.json"
    command = [sys.executable, str(HERE / arguments[0]), *arguments[1:], "--out", str(out)]
    logger.info("job %s: %s", name, " ".join(command[1:]))
    load = load_average()
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, **environment}, cwd=HERE.parent)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"benchmark job {name} failed with exit code {process.returncode}: {' '.join(command)}")
    result = json.loads(out.read_text(encoding="utf-8"))
    # Linux reports ru_maxrss in KiB.
    result.update(job_seconds=round(seconds, 1), peak_rss_gb=round(usage.ru_maxrss / 1024**2, 3),
                  job_load_average_start=load, environment=environment,
                  measured_at=datetime.datetime.now().isoformat(timespec="minutes"), run_all_command=invocation)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info("job %s finished in %.0f s, peak RSS %.2f GB", name, seconds, result["peak_rss_gb"])
    return result


def machine() -> dict:
    import numba
    import numpy
    import scipy

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = "unknown"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 1024**2:.1f} GB"
    return {
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
    }


# --------------------------------------------------------------------------- RESULTS.md
def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def args_scale(results: dict) -> str:
    """Return the scale of the main training measurements."""
    for name in ("training-epoch", "training"):
        if name in results:
            return results[name]["scale"]
    return "?"


def render(results: dict, meta: dict) -> str:
    lines = [START_MARK, ""]
    add = lines.append
    commands = sorted({r["run_all_command"] for r in results.values() if "run_all_command" in r})
    add(f"Measured on {meta['date']} by " + " and then ".join(f"`{command}`" for command in commands) + "; the jobs "
        "table at the end gives each job's time.")
    add("")
    m = meta["machine"]
    add(f"Machine: {m['nproc']} cores (`nproc`), {m['cpu']}, {m['memory']} RAM; Python {m['python']}, "
        f"NumPy {m['numpy']}, SciPy {m['scipy']}, Numba {m['numba']}. "
        f"OPENBLAS_NUM_THREADS={meta['blas_threads']} for every job except the BLAS comparison.")
    add("")
    add("Every timing is listed with the 1-minute load average when it started: other processes ran on the "
        "machine, and a load above 2 means they took CPU time from the benchmark.")
    add("")

    training = results.get("training")
    epoch = results.get("training-epoch")
    scoring = results.get("scoring")
    quality = results.get("quality")
    prepare = results.get("prepare")

    add("### Targets")
    add("")
    add("| target | measured | |")
    add("|---|---|---|")
    epoch_rows = []
    if epoch:
        epoch_rows.append((epoch["training_seconds"], epoch["train_impressions"],
                           f"full epoch, load {epoch['load_average_start']}"))
    if training:
        epoch_rows.append((training["epoch_seconds_estimate"], training["train_impressions"],
                           f"{training['timed_batches']} batches timed and extrapolated, load {training['load_average_start']}"))
        if "cpu_seconds_per_batch" in training:
            epoch_rows.append((training["cpu_seconds_per_batch"] * training["epoch_batches"], training["train_impressions"],
                               "CPU time of the same batches: an estimate for an otherwise idle machine"))
    for seconds, impressions, method in epoch_rows:
        scaled = seconds / 60 * MIND_SMALL_TRAIN_IMPRESSIONS / impressions
        add(f"| one epoch at `{args_scale(results)}` <= {TARGET_EPOCH_MINUTES:.0f} min | {seconds / 60:.1f} min for "
            f"{impressions:,} impressions ({method}); {scaled:.1f} min scaled to all {MIND_SMALL_TRAIN_IMPRESSIONS:,}, "
            f"{scaled / TARGET_EPOCH_MINUTES:.1f}x the target | {_met(scaled <= TARGET_EPOCH_MINUTES)} |")
    if scoring:
        add(f"| evaluate all {scoring['dev_impressions']:,} dev impressions <= {TARGET_EVALUATION_SECONDS:.0f} s | "
            f"{scoring['evaluation_seconds']:.1f} s (predict {scoring['predict_seconds']:.1f} s with news encoding, "
            f"metrics {scoring['metrics_seconds']:.1f} s; load {scoring['load_average_start']}) | "
            f"{_met(scoring['evaluation_seconds'] <= TARGET_EVALUATION_SECONDS)} |")
    peaks = [r["peak_rss_gb"] for r in (training, epoch) if r]
    if peaks:
        add(f"| peak RSS while training <= {TARGET_TRAINING_GB:.0f} GB | {max(peaks):.2f} GB (whole job: data "
            f"preparation, model, steps{', validation' if epoch else ''}) | {_met(max(peaks) <= TARGET_TRAINING_GB)} |")
    for q in (quality, results.get("quality-demo")):
        if not q:
            continue
        add(f"| validation AUC within {TARGET_AUC_DIFFERENCE} of the unoptimised path ({q['scale']}, "
            f"{q['train_impressions']:,} impressions, {q.get('epochs', 1)} epoch(s)) | "
            f"{q['kernels']['validation_auc']:.4f} vs {q['unoptimised']['validation_auc']:.4f} "
            f"(difference {q['auc_difference']:.4f}) | {_met(q['auc_difference'] <= TARGET_AUC_DIFFERENCE)} |")
    text = results.get("text")
    if text:
        lsa = text["lsa"]
        add(f"| LSA fit on the {text['news']:,} training news <= {TARGET_LSA_SECONDS:.0f} s | "
            f"{lsa['fit_transform_seconds']:.1f} s ({lsa['cpu_seconds']:.1f} s CPU; load {lsa['load_average_start']}) | "
            f"{_met(lsa['fit_transform_seconds'] <= TARGET_LSA_SECONDS)} |")
        minilm = text["minilm"]
        if "skipped" in minilm:
            add(f"| MiniLM >= {TARGET_MINILM_TEXTS_PER_SECOND:.0f} news/s | not measured: {minilm['skipped']} | |")
        else:
            add(f"| MiniLM >= {TARGET_MINILM_TEXTS_PER_SECOND:.0f} news/s | {minilm['texts_per_second']:.1f} news/s "
                f"({minilm['texts']:,} texts of {minilm['mean_tokens']:.0f} tokens on average from "
                f"{minilm.get('origin', 'the generated news')}, {minilm['workers']} "
                f"threads; load {minilm['load_average_start']}) | "
                f"{_met(minilm['texts_per_second'] >= TARGET_MINILM_TEXTS_PER_SECOND)} |")
    add("")

    add("### Against the original design")
    add("")
    add("| | original design | minirec (this machine) | ratio |")
    add("|---|---|---|---|")
    low, high = ORIGINAL_PYTORCH_RATE
    for seconds, impressions, method in epoch_rows:
        per_epoch = seconds * MIND_SMALL_TRAIN_IMPRESSIONS / impressions
        rate = impressions / seconds
        add(f"| training time per MIND-small epoch ({MIND_SMALL_TRAIN_IMPRESSIONS:,} impressions) | "
            f"~{ORIGINAL_EPOCH_MINUTES:.0f} min (10 epochs in 3 h, Xeon E5-2680 v4, 32 GB) | {_minutes(per_epoch)} "
            f"({method}) | {per_epoch / 60 / ORIGINAL_EPOCH_MINUTES:.2f}x the time |")
        add(f"| training impressions per second | {low:.0f}-{high:.0f} (original PyTorch implementation, 2-core "
            f"machine) | {rate:.1f} ({method}) | {rate / high:.1f}x-{rate / low:.1f}x as many |")
    if scoring:
        per_1000 = scoring["seconds_per_1000_impressions"]
        add(f"| inference time per 1,000 samples | {ORIGINAL_SECONDS_PER_1000:.0f} s | {per_1000:.2f} s per 1,000 "
            f"impressions ({1000 * scoring['predict_seconds'] / scoring['dev_candidates']:.3f} s per 1,000 candidates) | "
            f"{per_1000 / ORIGINAL_SECONDS_PER_1000:.2f}x the time |")
        add(f"| inference memory | {ORIGINAL_INFERENCE_GB:.0f} GB | {scoring['peak_rss_gb']:.2f} GB peak RSS of the "
            f"evaluation job (data preparation included) | {scoring['peak_rss_gb'] / ORIGINAL_INFERENCE_GB:.2f}x |")
    if prepare:
        add(f"| graph construction memory | {ORIGINAL_GRAPH_GB:.0f} GB | {prepare['peak_rss_gb']:.2f} GB peak RSS of "
            f"the whole data preparation (LSA fit and graph included) | "
            f"{prepare['peak_rss_gb'] / ORIGINAL_GRAPH_GB:.2f}x |")
    add("")

    add("### Training: how cost grows with data")
    add("")
    add("| scale | training impressions | batches | s per batch | impressions/s | epoch | how | peak RSS | load |")
    add("|---|---|---|---|---|---|---|---|---|")
    for name in ("training-demo", "quality", "training", "training-epoch"):
        r = results.get(name)
        if not r:
            continue
        if name == "quality":
            k = r["kernels"]
            batches = -(-r["train_impressions"] // 64)
            add(f"| {r['scale']}, latest {r['train_impressions']:,} | {r['train_impressions']:,} | {batches} | "
                f"{k['training_seconds'] / batches:.3f} | {r['train_impressions'] / k['training_seconds']:.1f} | "
                f"{_minutes(k['training_seconds'])} | full epoch (quality job) | {r['peak_rss_gb']:.2f} GB (two epochs) | "
                f"{k['load_average_start']} |")
        elif "epoch_seconds_estimate" in r:
            add(f"| {r['scale']} | {r['train_impressions']:,} | {r['epoch_batches']} | {r['seconds_per_batch']:.3f} | "
                f"{r['impressions_per_second']:.1f} | {_minutes(r['epoch_seconds_estimate'])} | "
                f"{r['timed_batches']} batches timed, extrapolated | {r['peak_rss_gb']:.2f} GB | {r['load_average_start']} |")
        else:
            add(f"| {r['scale']} | {r['train_impressions']:,} | {r['epoch_batches']} | "
                f"{r['training_seconds'] / r['epoch_batches']:.3f} | {r['impressions_per_second']:.1f} | "
                f"{_minutes(r['training_seconds'])} (+{r['validation_and_checkpoint_seconds']:.1f} s validation) | "
                f"full epoch | {r['peak_rss_gb']:.2f} GB | {r['load_average_start']} |")
    add("")

    if training:
        add(f"### Where a training step's time goes (`{training['scale']}`, {training['timed_batches']} batches)")
        add("")
        if "cpu_seconds_per_batch" in training:
            add(f"A batch took {training['seconds_per_batch']:.3f} s of wall time and {training['cpu_seconds_per_batch']:.3f} s "
                f"of CPU time (load {training['load_average_start']} at the start).")
            add("")
        add("| phase | s per batch | share |")
        add("|---|---|---|")
        total = training["seconds_per_batch"]
        for phase, seconds in training["phases_seconds_per_batch"].items():
            add(f"| {phase} | {seconds:.4f} | {100 * seconds / total:.0f}% |")
        add("")
        add("Inside the forward pass (the news encoder includes its graph view):")
        add("")
        add("| part | s per batch |")
        add("|---|---|")
        for part, seconds in training["forward_parts_seconds_per_batch"].items():
            add(f"| {part} | {seconds:.4f} |")
        add("")
        add(f"Backward rules by operation ({training['backward_profiled_batches']} further batches, each rule timed):")
        add("")
        add("| operation | s per batch |")
        add("|---|---|")
        for op, seconds in list(training["backward_by_op_seconds_per_batch"].items())[:8]:
            add(f"| {op} | {seconds:.4f} |")
        add("")
        if "matmul_gflop_per_batch" in training:
            add(f"Matrix products per batch, forward and backward: at most {training['matmul_gflop_per_batch']} GFLOP.")
            add("")

    changes = results.get("step-changes")
    if changes:
        add(f"### Two backward rules, before and after (`{changes['scale']}`, the same {changes['batches']} batches "
            "per variant)")
        add("")
        add("| variant | s per batch | forward | backward | against before | load |")
        add("|---|---|---|---|---|---|")
        base = changes["before"]["seconds_per_batch"]
        described = {"before": "before: matmul backward copies operands, take_rows backward uses np.add.at",
                     "matmul": "matmul backward without copies", "now": "and take_rows backward with the Numba loop (now)"}
        for name, label in described.items():
            v = changes[name]
            phases = v["phases_seconds_per_batch"]
            add(f"| {label} | {v['seconds_per_batch']:.3f} | {phases['forward']:.3f} | {phases['backward']:.3f} | "
                f"{v['seconds_per_batch'] / base:.2f}x | {v['load_average_start']} |")
        add("")

    kernels = results.get("kernels")
    if kernels:
        graph, whole = kernels["graph_blocks"], kernels["whole_graph"]
        grouped, scores = kernels["grouped_scoring"], kernels["training_scores"]
        add("### Numba kernels against their references (one run, fastest of 5)")
        add("")
        add("| kernel | shapes | reference | Numba | speed-up | load |")
        add("|---|---|---|---|---|---|")
        ms = graph["ms_per_training_batch"]
        add(f"| mean aggregation forward A @ X | {graph['blocks']} GraphSAGE blocks of training batches, "
            f"{graph['mean_entries_per_block']:,} entries each | SciPy {ms['scipy_forward']:.3f} ms/batch | "
            f"{ms['numba_forward']:.3f} ms/batch | {graph['speedup_forward']}x | {graph['load_average_start']} |")
        add(f"| mean aggregation backward A.T @ G | same | SciPy (transpose + product) {ms['scipy_backward']:.3f} ms/batch | "
            f"{ms['numba_backward']:.3f} ms/batch | {graph['speedup_backward']}x | {graph['load_average_start']} |")
        add(f"| threaded forward, same blocks | same | serial Numba {ms['numba_forward']:.3f} ms/batch | "
            f"{ms['threaded_forward']:.3f} ms/batch | {graph['threaded_over_serial_forward']}x | {graph['load_average_start']} |")
        add(f"| threaded forward, whole graph | {whole['shape'][0]:,} nodes, {whole['entries']:,} entries, 256 wide | "
            f"SciPy {whole['ms']['scipy']} ms, serial Numba {whole['ms']['numba_serial']} ms | {whole['ms']['numba_threaded']} ms | "
            f"{whole['threaded_over_serial']}x over serial | {whole['load_average_start']} |")
        sec = grouped["seconds"]
        add(f"| grouped scoring (sigmoid) | {grouped['impressions']:,} dev impressions, {grouped['candidates']:,} "
            f"candidates, 256 wide | NumPy {sec['numpy_reference']} s; padded batches {sec['padded_batches']} s | "
            f"{sec['numba']} s ({grouped['candidates_per_second_numba']:,} candidates/s) | "
            f"{grouped['speedup_over_reference']}x over NumPy, {grouped['speedup_over_padded']}x over padded | "
            f"{grouped['load_average_start']} |")
        sms = scores["ms_per_batch"]
        add(f"| score_logits forward + backward | {scores['batches']} training batches, padded width "
            f"{scores['mean_padded_width']} | composed operations {sms['composed_operations']} ms/batch | "
            f"{sms['fused_kernels']} ms/batch | {scores['speedup']}x | {scores['load_average_start']} |")
        add("")

    if scoring:
        comparison = scoring["comparison"]
        add(f"### Evaluation of the `{scoring['scale']}` dev split")
        add("")
        add("| | value |")
        add("|---|---|")
        add(f"| impressions, candidates, catalogue news | {scoring['dev_impressions']:,}, {scoring['dev_candidates']:,}, "
            f"{scoring['catalogue_news']:,} |")
        if "distinct_user_history_pairs" in scoring:
            add(f"| distinct (user, history) pairs, each encoded once; mean history length | "
                f"{scoring['distinct_user_history_pairs']:,}; {scoring['mean_history_length']} clicks |")
        add(f"| `model.predict(dev)` | {scoring['predict_seconds']:.1f} s ({scoring['predict_cpu_seconds']:.1f} s CPU), "
            f"of which news encoding {scoring['of_which_news_encoding_seconds']:.1f} s |")
        add(f"| MIND metrics over all impressions | {scoring['metrics_seconds']:.1f} s |")
        add(f"| candidates per second (predict, end to end) | {scoring['candidates_per_second']:,} |")
        add(f"| padded path on the first {comparison['impressions']:,} impressions | {comparison['padded_seconds']:.1f} s "
            f"against {comparison['current_seconds']:.1f} s ({comparison['speedup']}x); largest score difference "
            f"{comparison['max_abs_score_difference']:.1e} |")
        add(f"| padded path, whole split (estimate) | {comparison['padded_full_split_estimate_seconds']:.0f} s |")
        add(f"| peak RSS of the job | {scoring['peak_rss_gb']:.2f} GB ({scoring['peak_rss_gb_after_prepare']:.2f} GB "
            f"after data preparation) |")
        add(f"| load average at start | {scoring['load_average_start']} |")
        add("")

    add("### Jobs: when, how long, peak memory")
    add("")
    add("| job | measured at | wall time | peak RSS | after data preparation | load at start |")
    add("|---|---|---|---|---|---|")
    for name, r in results.items():
        after = r.get("peak_rss_gb_after_prepare")
        add(f"| {name} | {r['measured_at']} | {r['job_seconds']:.0f} s | {r['peak_rss_gb']:.2f} GB | "
            f"{f'{after:.2f} GB' if after is not None else '-'} | {r['job_load_average_start']} |")
    add("")

    for name in ("quality", "quality-demo"):
        q = results.get(name)
        if not q:
            continue
        epochs = q.get("epochs", 1)
        add(f"### Quality: {epochs} epoch(s) on {q['train_impressions']:,} `{q['scale']}` impressions, "
            f"with and without the kernels")
        add("")
        add("| path | validation AUC per epoch | MRR | last epoch loss | training time | load |")
        add("|---|---|---|---|---|---|")
        for label in ("kernels", "unoptimised"):
            r = q[label]
            per_epoch = ", ".join(f"{auc:.4f}" for auc in r.get("validation_auc_per_epoch", [r["validation_auc"]]))
            add(f"| {label} | {per_epoch} | {r['validation_mrr']:.4f} | {r['epoch_loss']:.4f} | "
                f"{r['training_seconds']:.0f} s | {r['load_average_start']} |")
        add("")
        if "max_weight_difference" in q:
            add(f"Largest difference between the two runs' trained weights: {q['max_weight_difference']:.1e}.")
            add("")

    blas = [results.get("blas-1"), results.get("blas-2")]
    if all(blas):
        add("### BLAS threads (one Linear layer's three products, 3200 x 256 x 256, fastest of 20)")
        add("")
        add("| OPENBLAS_NUM_THREADS | ms | GFLOP/s | load |")
        add("|---|---|---|---|")
        for r in blas:
            add(f"| {r['openblas_num_threads']} | {r['ms']} | {r['gflops']} | {r['load_average_start']} |")
        add("")
    if prepare:
        add(f"Data preparation of `{prepare['scale']}` (reading, LSA fit, graph of {prepare['graph_entities']:,} "
            f"entities and {prepare['graph_edges']:,} edges, encoding): {prepare['prepare_seconds']:.0f} s, peak RSS "
            f"{prepare['peak_rss_gb']:.2f} GB, load {prepare['load_average_start']}.")
        add("")
    add(END_MARK)
    return "\n".join(lines)


def write_results_md(block: str) -> None:
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.is_file() else ""
    if START_MARK in text and END_MARK in text:
        before = text[:text.index(START_MARK)]
        after = text[text.index(END_MARK) + len(END_MARK):]
        text = before + block + after
    else:
        text = text + ("\n" if text else "") + block + "\n"
    partial = RESULTS_MD.with_name(RESULTS_MD.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, RESULTS_MD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", help="scale of the main measurements (default small)")
    parser.add_argument("--batches", type=int, default=300, help="training batches to time (default 300)")
    parser.add_argument("--subset", type=int, default=20000,
                        help="training impressions of the quality comparison's subset (default 20000)")
    parser.add_argument("--full-epoch", action="store_true", help="also train one full epoch at --scale")
    parser.add_argument("--blas-threads", default="1",
                        help="OPENBLAS_NUM_THREADS for the jobs (default 1; 'unset' keeps OpenBLAS's choice)")
    parser.add_argument("--only", nargs="+", default=None, help="run only these jobs; keep the others' last results")
    parser.add_argument("--no-run", action="store_true", help="only rewrite RESULTS.md from the stored results")
    args = parser.parse_args()
    setup_logging()

    if args.blas_threads != "unset":
        os.environ["OPENBLAS_NUM_THREADS"] = args.blas_threads
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for scale in {"demo", args.scale}:
        ensure_data(scale)

    listed = jobs(args)
    known = {name for name, _, _ in listed}
    unknown = set(args.only or ()) - known
    if unknown:
        parser.error(f"unknown job(s) {', '.join(sorted(unknown))}; choose from {', '.join(sorted(known))}")
    invocation = "python " + " ".join([Path(sys.argv[0]).relative_to(HERE.parent).as_posix()
                                       if Path(sys.argv[0]).is_absolute() else sys.argv[0], *sys.argv[1:]])
    results = {}
    for name, arguments, environment in listed:
        selected = name in args.only if args.only is not None else name != "training-epoch" or args.full_epoch
        if not args.no_run and selected:
            results[name] = run_job(name, arguments, environment, invocation)
        elif (RESULTS_DIR / f"{name}.json").is_file():
            results[name] = json.loads((RESULTS_DIR / f"{name}.json").read_text(encoding="utf-8"))

    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "blas_threads": args.blas_threads,
        "load_average_end": load_average(),
    }
    write_results_md(render(results, meta))
    logger.info("wrote %s", RESULTS_MD)


if __name__ == "__main__":
    main()

"""Draw the figures of docs/ into docs/plots/ (needs matplotlib: pip install -e '.[plot]').

    python docs/make_plots.py

tau_initial_range.png
    For an untrained default model (all three views, dim 256) on the generated demo data, the
    spread of its first predictions sigmoid(tau * cos) on the validation impressions, at several
    values of tau, inside the bound [sigmoid(-tau), sigmoid(tau)].
relu_last_cosine.png
    Predictions sigmoid(2 cos) for pairs of random vectors whose last step is a ReLU, against pairs
    whose last step is linear: with ReLU last, no prediction falls below 0.5.

Set OPENBLAS_NUM_THREADS=1 before running on a busy machine: the LSA fit of the default model
uses a dense SVD, which multi-threaded OpenBLAS slows down badly when the cores are shared.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

PLOTS = Path(__file__).resolve().parent / "plots"
TAUS = (0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0)

logger = logging.getLogger("make_plots")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def initial_cosines() -> np.ndarray:
    """Return cos(user, news) of an untrained default model for every demo validation candidate."""
    from minirec.model.config import ModelConfig, TrainConfig
    from minirec.model.recommender import Recommender
    from minirec.synth.generate import generate_mind
    from minirec.train.pipeline import RunOptions, prepare

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        generate_mind(data, scale="demo", seed=0)
        config = ModelConfig(tau=1.0)
        prepared = prepare(RunOptions(data=data, out=Path(folder) / "run", model=config,
                                      train=TrainConfig(), progress=False))
        model = Recommender(config, prepared.inputs)
        probabilities = np.concatenate(model.predict(prepared.valid_set)).astype(np.float64)
    # At tau = 1 the logit is the cosine itself.
    return np.log(probabilities / (1.0 - probabilities))


def plot_tau_range(plt, cosines: np.ndarray) -> Path:
    taus = np.array(TAUS)
    low, median, high = (np.array([np.percentile(sigmoid(tau * cosines), q) for tau in taus]) for q in (5, 50, 95))
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    axes.fill_between(taus, sigmoid(-taus), sigmoid(taus), color="0.85", label="bound [sigmoid(-τ), sigmoid(τ)]")
    axes.fill_between(taus, low, high, color="tab:blue", alpha=0.35, label="middle 90% of initial predictions")
    axes.plot(taus, median, color="tab:blue", marker="o", label="median initial prediction")
    axes.axhline(0.5, color="0.4", linewidth=0.8, linestyle="--")
    axes.set_xlabel("τ (temperature of the cosine score)")
    axes.set_ylabel("sigmoid(τ · cos(user, news))")
    axes.set_ylim(0, 1)
    axes.set_title("Untrained default model, generated demo data")
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    path = PLOTS / "tau_initial_range.png"
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_relu_last(plt) -> Path:
    draws = np.random.default_rng(0).normal(size=(2, 5000, 256))

    def cosine(u, n):
        return (u * n).sum(axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(n, axis=1))

    linear_last = sigmoid(2.0 * cosine(draws[0], draws[1]))
    relu_last = sigmoid(2.0 * cosine(np.maximum(draws[0], 0), np.maximum(draws[1], 0)))
    figure, axes = plt.subplots(figsize=(6.4, 3.4), dpi=100)
    bins = np.linspace(0.3, 0.75, 91)
    axes.hist(linear_last, bins=bins, color="tab:blue", alpha=0.7, label="linear last: cos can be negative")
    axes.hist(relu_last, bins=bins, color="tab:red", alpha=0.7, label="ReLU last: cos ≥ 0")
    axes.axvline(0.5, color="0.4", linewidth=0.8, linestyle="--")
    axes.set_xlabel("sigmoid(2 · cos) for random 256-d vector pairs")
    axes.set_ylabel("pairs")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path = PLOTS / "relu_last_cosine.png"
    figure.savefig(path)
    plt.close(figure)
    return path


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("matplotlib is missing: install it with pip install -e '.[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOTS.mkdir(exist_ok=True)
    cosines = initial_cosines()
    logger.info("initial cosines: min %.3f, median %.3f, max %.3f", cosines.min(), np.median(cosines), cosines.max())
    for tau in (2.0, 10.0):
        predictions = sigmoid(tau * cosines)
        logger.info("tau %g: initial predictions from %.3f to %.3f, median %.3f",
                    tau, predictions.min(), predictions.max(), np.median(predictions))
    for path in (plot_tau_range(plt, cosines), plot_relu_last(plt)):
        logger.info("wrote %s (%d bytes)", path, path.stat().st_size)


if __name__ == "__main__":
    main()

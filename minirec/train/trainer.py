"""The training loop: the objective of :mod:`minirec.train.objectives`, AdamW, plateau schedule, early stopping.

Each step encodes the batch's distinct news once, each user once per impression, and scores every
candidate of every impression against its user. After each epoch the model is evaluated on the
validation impressions. The learning-rate schedule and early stopping follow validation AUC, and
the best epoch's weights are kept.

A checkpoint is written every ``checkpoint_seconds`` and at the end of each epoch. A run started
again with the same output directory continues from the last checkpoint: same epoch, same batch,
same random streams.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from minirec.eval.metrics import evaluate
from minirec.model.config import TrainConfig
from minirec.model.recommender import Recommender
from minirec.optim import AdamW, EarlyStopping, ReduceLROnPlateau, clip_grad_norm
from minirec.train import checkpoint
from minirec.train.batches import ImpressionSet, batch_order, make_batch
from minirec.train.objectives import training_loss
from minirec.train.progress import ProgressBar

logger = logging.getLogger(__name__)


@dataclass
class EpochSummary:
    epoch: int
    loss: float
    validation: dict
    seconds: float
    lr: float
    view_weights: dict[str, float] = field(default_factory=dict)


def validation_metrics(model: Recommender, impressions: ImpressionSet) -> dict:
    scores = model.predict(impressions)
    return evaluate(impressions.labels, scores).as_dict()


class Trainer:
    def __init__(self, model: Recommender, train_set: ImpressionSet, valid_set: ImpressionSet,
                 config: TrainConfig, out_dir: Path, user_ids: list[str], progress: bool = True,
                 checkpoint_seconds: float = 300.0):
        self.model, self.train_set, self.valid_set, self.config = model, train_set, valid_set, config
        self.out_dir, self.user_ids, self.progress = Path(out_dir), user_ids, progress
        self.checkpoint_seconds = checkpoint_seconds
        self.optimizer = AdamW(model.named_parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = ReduceLROnPlateau(self.optimizer, mode="max", factor=config.plateau_factor,
                                           patience=config.plateau_patience)
        self.stopper = EarlyStopping(patience=config.early_stopping_patience, mode="max")
        self.history: list[EpochSummary] = []
        self.epoch, self.next_batch = 1, 0
        self.loss_sum, self.loss_count = 0.0, 0
        self.weight_sum = np.zeros(len(model.config.views))
        self.weight_count = 0
        self.stopped = False
        # Seconds spent in fit() over every session of this run, resumed ones included.
        self.training_seconds = 0.0
        self._clock_mark: float | None = None

    # ----------------------------------------------------------------- checkpoints
    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoint"

    @property
    def best_dir(self) -> Path:
        return self.out_dir / "model"

    def _count_time(self) -> None:
        if self._clock_mark is not None:
            now = time.monotonic()
            self.training_seconds += now - self._clock_mark
            self._clock_mark = now

    def save_checkpoint(self) -> None:
        self._count_time()
        info = {
            "epoch": self.epoch, "next_batch": self.next_batch, "stopped": self.stopped,
            "loss_sum": self.loss_sum, "loss_count": self.loss_count,
            "weight_sum": self.weight_sum.tolist(), "weight_count": self.weight_count,
            "scheduler": self.scheduler.state_dict(), "stopper": self.stopper.state_dict(),
            "rng": self.model.rng.bit_generator.state,
            "history": [asdict(h) for h in self.history],
            "settings": self._resumable_settings(),
            "training_seconds": self.training_seconds,
        }
        checkpoint.save_checkpoint(self.checkpoint_dir, self.model, self.user_ids, self.optimizer.state_dict(), info)

    def _resumable_settings(self) -> dict:
        """Return the training settings a resumed run must share with its checkpoint (all but the epoch count)."""
        settings = asdict(self.config)
        settings.pop("epochs")
        return json.loads(json.dumps(settings))  # as the checkpoint's JSON stores them (tuples become lists)

    def resume(self) -> bool:
        """Load the last checkpoint of ``out_dir`` if there is one; return whether training resumes."""
        state = checkpoint.load_checkpoint(self.checkpoint_dir)
        if state is None:
            return False
        folder, arrays, info = state
        try:
            saved, _ = checkpoint.load_model(folder)
        except ValueError as error:
            raise ValueError(f"{error}. To start again without the checkpoint, pass --fresh") from None
        changed = {key: (value, getattr(self.model.config, key)) for key, value in vars(saved.config).items()
                   if value != getattr(self.model.config, key)}
        current = self._resumable_settings()
        changed.update({key: (value, current[key]) for key, value in info.get("settings", {}).items()
                        if key in current and value != current[key]})
        if changed:
            details = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changed.items())
            raise ValueError(f"{folder} was written with other settings ({details}): "
                             "rerun with the same arguments to resume, or pass --fresh to start again")
        self.model.load_state_dict(saved.state_dict())
        self.optimizer.load_state_dict(arrays)
        self.scheduler.load_state_dict(info["scheduler"])
        self.stopper.load_state_dict(info["stopper"])
        self.model.rng.bit_generator.state = info["rng"]
        self.epoch, self.next_batch, self.stopped = info["epoch"], info["next_batch"], info["stopped"]
        self.loss_sum, self.loss_count = info["loss_sum"], info["loss_count"]
        self.weight_sum, self.weight_count = np.array(info["weight_sum"]), info["weight_count"]
        self.history = [EpochSummary(**h) for h in info["history"]]
        self.training_seconds = info.get("training_seconds", 0.0)
        trained = self.epoch - 1
        if trained > self.config.epochs:
            raise ValueError(f"{folder} has already trained {trained} epochs, more than --epochs {self.config.epochs}: "
                             f"ask for at least {trained}, or pass --fresh to start again")
        logger.info("resuming from %s: epoch %d, batch %d", folder, self.epoch, self.next_batch)
        return True

    # ----------------------------------------------------------------- training
    def train_step(self, indices: np.ndarray) -> float:
        batch = make_batch(self.train_set, indices)
        logits, weights = self.model(batch)
        # The model's generator draws the listwise negatives, so a resumed run draws the same ones.
        loss = training_loss(self.config, logits, batch, self.model.rng)
        self.optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(self.model.parameters(), self.config.clip_norm)
        self.optimizer.step()
        # Rows without any view (the padding row, news with nothing known) have all-zero weights.
        present = weights.data.sum(axis=1) > 0
        self.weight_sum += weights.data[present].sum(axis=0)
        self.weight_count += int(present.sum())
        return loss.item()

    def run_epoch(self) -> None:
        rng = np.random.default_rng([self.config.seed, self.epoch])  # the same order when resumed
        batches = batch_order(len(self.train_set), self.config.batch_size, rng)
        bar = ProgressBar(len(batches), f"epoch {self.epoch}", enabled=self.progress)
        bar.update(self.next_batch)
        started = last_save = time.monotonic()
        self.model.train()
        for position in range(self.next_batch, len(batches)):
            self.loss_sum += self.train_step(batches[position])
            self.loss_count += 1
            self.next_batch = position + 1
            bar.update(1, f"loss {self.loss_sum / self.loss_count:.4f}")
            if time.monotonic() - last_save > self.checkpoint_seconds:
                self.save_checkpoint()
                last_save = time.monotonic()
        bar.close()
        self.finish_epoch(time.monotonic() - started)

    def finish_epoch(self, seconds: float) -> None:
        metrics = validation_metrics(self.model, self.valid_set)
        views = self.model.config.views
        weights = self.weight_sum / max(self.weight_count, 1)
        summary = EpochSummary(epoch=self.epoch, loss=self.loss_sum / max(self.loss_count, 1), validation=metrics,
                               seconds=seconds, lr=self.optimizer.lr,
                               view_weights={v: float(w) for v, w in zip(views, weights)})
        self.history.append(summary)
        auc = metrics["auc"] if np.isfinite(metrics["auc"]) else 0.0
        self.stopped = self.stopper.step(auc, self.epoch)
        if self.stopper.improved_last:
            checkpoint.save_model(self.best_dir, self.model, self.user_ids)
        reduced = self.scheduler.step(auc)
        weight_text = " ".join(f"{v}={w:.2f}" for v, w in summary.view_weights.items())
        logger.info("epoch %d: loss %.4f, validation AUC %.4f, MRR %.4f, %.0fs, lr %.2g, view weights %s%s",
                    self.epoch, summary.loss, metrics["auc"], metrics["mrr"], seconds, summary.lr, weight_text,
                    " (best so far)" if self.stopper.improved_last else "")
        if reduced:
            logger.info("validation AUC has not improved for %d epochs: learning rate lowered to %.2g",
                        self.config.plateau_patience + 1, self.optimizer.lr)
        self.epoch += 1
        self.next_batch, self.loss_sum, self.loss_count = 0, 0.0, 0
        self.weight_sum, self.weight_count = np.zeros(len(views)), 0
        self.save_checkpoint()

    def fit(self) -> list[EpochSummary]:
        self._clock_mark = time.monotonic()
        while self.epoch <= self.config.epochs and not self.stopped:
            self.run_epoch()
        self._count_time()
        self._clock_mark = None
        if self.stopped and self.epoch <= self.config.epochs:
            logger.info("early stopping: validation AUC has not improved since epoch %d", self.stopper.best_epoch)
        else:
            epochs = self.config.epochs
            logger.info("trained all %d epoch%s; the best was epoch %d", epochs, "" if epochs == 1 else "s",
                        self.stopper.best_epoch)
        if (self.best_dir / checkpoint.MODEL_FILE).exists():
            best, _ = checkpoint.load_model(self.best_dir)
            self.model.load_state_dict(best.state_dict())
        return self.history

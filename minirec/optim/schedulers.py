"""Learning-rate reduction on a plateau of the validation metric, and early stopping."""

from __future__ import annotations


class ReduceLROnPlateau:
    """Multiply the optimiser's learning rate by ``factor`` after ``patience`` epochs without improvement.

    ``mode="max"`` for a metric such as AUC, ``"min"`` for a loss. An epoch improves when it beats the
    best value so far by more than ``threshold`` (relative). After a reduction the count starts again.
    """

    def __init__(self, optimizer, mode: str = "max", factor: float = 0.5, patience: int = 2,
                 threshold: float = 1e-4, min_lr: float = 0.0):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be between 0 and 1, got {factor}")
        self.optimizer, self.mode, self.factor = optimizer, mode, factor
        self.patience, self.threshold, self.min_lr = patience, threshold, min_lr
        self.best: float | None = None
        self.bad_epochs = 0

    def _improves(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best * (1 + self.threshold) if self.best > 0 else value > self.best + abs(self.best) * self.threshold
        return value < self.best * (1 - self.threshold) if self.best > 0 else value < self.best - abs(self.best) * self.threshold

    def step(self, value: float) -> bool:
        """Record one epoch's metric; return whether the learning rate was reduced."""
        if self._improves(value):
            self.best, self.bad_epochs = value, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.bad_epochs = 0
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class EarlyStopping:
    """Tell training to stop once the metric has not improved for ``patience`` epochs in a row."""

    def __init__(self, patience: int = 3, mode: str = "max", min_delta: float = 0.0):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.patience, self.mode, self.min_delta = patience, mode, min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def step(self, value: float, epoch: int) -> bool:
        """Record one epoch's metric; return True when training should stop."""
        better = (self.best is None
                  or (self.mode == "max" and value > self.best + self.min_delta)
                  or (self.mode == "min" and value < self.best - self.min_delta))
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    @property
    def improved_last(self) -> bool:
        return self.bad_epochs == 0

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]

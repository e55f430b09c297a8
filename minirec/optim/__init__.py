"""Optimisation: AdamW, gradient clipping, plateau scheduling and early stopping."""

from minirec.optim.adamw import AdamW, clip_grad_norm
from minirec.optim.schedulers import EarlyStopping, ReduceLROnPlateau

__all__ = ["AdamW", "EarlyStopping", "ReduceLROnPlateau", "clip_grad_norm"]

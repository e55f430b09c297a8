"""Layers built on the autograd engine."""

from minirec.nn.attention import MultiHeadSelfAttention, TimeDecayAttentionPooling
from minirec.nn.layers import BatchNorm1d, Dropout, Embedding, LayerNorm, Linear, ProjectionBlock
from minirec.nn.module import Module

__all__ = [
    "BatchNorm1d", "Dropout", "Embedding", "LayerNorm", "Linear", "Module", "MultiHeadSelfAttention",
    "ProjectionBlock", "TimeDecayAttentionPooling",
]

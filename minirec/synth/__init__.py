"""Synthetic MIND-format datasets with a planted click model."""

from minirec.synth.generate import NewsTruth, SplitTruth, generate_mind
from minirec.synth.scales import SCALES, ClickModel, ScaleSpec

__all__ = ["SCALES", "ClickModel", "NewsTruth", "ScaleSpec", "SplitTruth", "generate_mind"]

"""Shared fixtures: a generated MIND-format dataset and a small prepared model."""

from pathlib import Path

import pytest

from minirec.model.config import ModelConfig, TrainConfig
from minirec.synth.generate import generate_mind
from minirec.train.pipeline import RunOptions, prepare

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def small_model_config(**overrides) -> ModelConfig:
    """A narrow model that trains in seconds; the architecture is the full one."""
    values = dict(dim=32, news_id_dim=16, user_id_dim=16, heads=4, seed=0)
    values.update(overrides)
    return ModelConfig(**values)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    generate_mind(folder, scale="demo", seed=0)
    return folder


def prepared_run(data: Path, out: Path, model: ModelConfig | None = None, **train):
    options = RunOptions(data=data, out=out, model=model or small_model_config(),
                         train=TrainConfig(**train), text_dim=32, progress=False)
    return options, prepare(options)

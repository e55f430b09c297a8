"""The model's settings, saved as JSON beside every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

VIEWS = ("id", "text", "graph")
FUSIONS = ("attention", "concat", "gate")
OBJECTIVES = ("bce", "listwise")


@dataclass
class ModelConfig:
    """Sizes and switches of the recommender. Table sizes are filled in from the data."""

    dim: int = 256                       # width of every view, the fused news vector and the user vector
    news_id_dim: int = 128               # learnable news-ID embedding, projected to ``dim``
    user_id_dim: int = 128               # learnable user-ID embedding, concatenated with the history summary
    entity_dim: int = 100                # TransE vectors in MIND's entity_embedding.vec are 100-d
    graph_layers: int = 2
    graph_dropout: float = 0.2
    dropout: float = 0.3
    heads: int = 8
    history_length: int = 50             # most recent clicks kept
    initial_decay: float = 0.05          # lambda of exp(-lambda * age), age counted in clicks
    tau: float = 2.0                     # temperature of the cosine score
    views: tuple[str, ...] = VIEWS
    fusion: str = "attention"
    id_view_dropout: float = 0.2         # share of news whose ID view is hidden during training
    num_news: int = 0                    # rows of the news catalogue, row 0 included
    num_news_ids: int = 0                # rows of the news-ID table, row 0 = not seen in training
    num_users: int = 0                   # rows of the user-ID table, row 0 = unknown user
    num_categories: int = 0
    num_entities: int = 0
    text_dim: int = 0
    seed: int = 0

    def __post_init__(self):
        self.views = tuple(self.views)
        unknown = [v for v in self.views if v not in VIEWS]
        if unknown or not self.views:
            raise ValueError(f"invalid views {list(self.views)}: choose one or more of {', '.join(VIEWS)}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"invalid fusion {self.fusion!r}: choose one of {', '.join(FUSIONS)}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def load(cls, path: Path) -> "ModelConfig":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass
class TrainConfig:
    """Optimisation settings; the defaults are the design's except the objective (README, "Defaults")."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    clip_norm: float = 1.0
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    early_stopping_patience: int = 3
    validation_fraction: float = 0.1
    max_impressions: int | None = None   # train on the first N training impressions only (quick runs)
    seed: int = 0
    # "listwise": each click against sampled non-clicks (the default, see the README); "bce": every
    # candidate, as the design trains.
    objective: str = "listwise"
    negatives: int = 4                   # non-clicks drawn per click by the listwise objective
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"invalid objective {self.objective!r}: choose one of {', '.join(OBJECTIVES)}")
        if self.negatives < 1:
            raise ValueError(f"negatives must be at least 1, got {self.negatives}")

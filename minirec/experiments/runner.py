"""Shared machinery of the experiments: data prepared once, one training run per variant.

An experiment prepares its data once with :func:`minirec.train.pipeline.prepare` (deterministic for
a given folder and settings) and trains every variant of its sweep on the same prepared data, each
in its own folder ``DIR/NAME/runs/KEY``. That folder is an ordinary training output: ``model/``
(the best epoch, loadable by ``minirec-recommend``), ``checkpoint/`` and ``run.json``.

``run.json`` records the run's settings and, once training has finished, its results. Started again
with the same settings, a finished run is reused and an interrupted one resumes from its checkpoint.
Different settings, or ``fresh``, start the run over.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minirec.eval.baselines import popularity_scores
from minirec.eval.metrics import evaluate
from minirec.model.config import ModelConfig, TrainConfig
from minirec.model.news_encoder import NewsInputs
from minirec.model.recommender import Recommender
from minirec.train import checkpoint
from minirec.files import write_text_atomic
from minirec.train.pipeline import LSA_FILE, PreparedData, RunOptions, prepare
from minirec.train.trainer import Trainer

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"

# ``--quick``: the full architecture at small widths, one epoch, for tests and smoke runs.
QUICK_MODEL = {"dim": 32, "news_id_dim": 16, "user_id_dim": 16, "heads": 4}
QUICK_TEXT_DIM = 32
QUICK_EPOCHS = 1


@dataclass
class ExperimentSettings:
    """Settings shared by every experiment of one ``minirec-experiment`` call."""

    data: Path
    out: Path                            # each experiment writes to out / NAME
    epochs: int | None = None            # None: TrainConfig's default, or QUICK_EPOCHS with quick
    max_impressions: int | None = None   # train on the latest N training impressions only
    quick: bool = False
    only: tuple[str, ...] = ()           # labels or keys of the variants to run; empty runs all
    fresh: bool = False
    progress: bool = True
    seed: int = 0
    command: str = ""                    # the command line, printed at the top of each report

    def model_config(self, **overrides) -> ModelConfig:
        values = dict(QUICK_MODEL) if self.quick else {}
        values["seed"] = self.seed
        values.update(overrides)
        return ModelConfig(**values)

    def train_config(self, **overrides) -> TrainConfig:
        values = {"max_impressions": self.max_impressions, "seed": self.seed}
        if self.epochs is not None:
            values["epochs"] = self.epochs
        elif self.quick:
            values["epochs"] = QUICK_EPOCHS
        values.update(overrides)
        return TrainConfig(**values)

    @property
    def text_dim(self) -> int:
        return QUICK_TEXT_DIM if self.quick else RunOptions.text_dim


@dataclass
class Variant:
    """One run of a sweep: ``label`` is shown in tables, ``key`` names its folder."""

    label: str
    key: str
    model: dict = field(default_factory=dict)   # ModelConfig overrides
    train: dict = field(default_factory=dict)   # TrainConfig overrides
    value: float | None = None                   # the swept value, for plots


def select_variants(name: str, variants: list[Variant], only: tuple[str, ...]) -> list[Variant]:
    """Keep the variants whose label or key is in ``only`` (all when it is empty), in sweep order."""
    if not only:
        return variants
    requested = {choice.lower() for choice in only}
    known = {v.label.lower() for v in variants} | {v.key.lower() for v in variants}
    unknown = sorted(requested - known)
    if unknown:
        choices = ", ".join(v.key for v in variants)
        raise ValueError(f"experiment {name} has no variant {', '.join(unknown)}: choose from {choices}")
    return [v for v in variants if v.label.lower() in requested or v.key.lower() in requested]


@dataclass
class RunResult:
    """The outcome of one training run, scored with its best epoch's weights."""

    label: str
    key: str
    model: Recommender
    epochs: list[dict]           # one EpochSummary (as a dict) per epoch
    best_epoch: int
    validation: dict             # validation metrics of the best epoch
    reported: dict               # metrics on the reported split
    seconds_per_epoch: float     # mean training time per epoch, validation excluded
    initial_range: tuple[float, float]  # min and max validation score before training
    parameters: int
    cpu_seconds_per_epoch: float | None = None  # processor time, validation included (None after a mid-epoch resume)
    reused: bool = False
    _report_scores: list[np.ndarray] | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """Return the run's numbers as plain JSON values."""
        return {
            "label": self.label, "key": self.key, "best_epoch": self.best_epoch,
            "validation": self.validation, "reported": self.reported,
            "seconds_per_epoch": self.seconds_per_epoch, "cpu_seconds_per_epoch": self.cpu_seconds_per_epoch,
            "initial_range": list(self.initial_range), "parameters": self.parameters, "epochs": self.epochs,
        }


class ExperimentSession:
    """Data prepared once for one experiment, and the training of its variants on it."""

    def __init__(self, name: str, settings: ExperimentSettings):
        self.name, self.settings = name, settings
        self.directory = Path(settings.out) / name
        self.directory.mkdir(parents=True, exist_ok=True)
        options = RunOptions(data=Path(settings.data), out=self.directory, model=settings.model_config(),
                             train=settings.train_config(), text_dim=settings.text_dim,
                             progress=settings.progress)
        self.prepared, self.base_model = prepare_once(options)
        if self.prepared.report_set.labels is None:
            raise ValueError(f"the reported split of {settings.data} ({self.prepared.report_split}) has no click "
                             "labels, so no metric can be computed: use a labelled dev split, or pass the train "
                             "folder alone so that its latest impressions are held out")

    @property
    def report_split(self) -> str:
        return self.prepared.report_split

    def popularity_baseline(self) -> dict:
        """Return the metrics of ranking the reported split's candidates by their training clicks."""
        scores = popularity_scores(self.prepared.train_set, self.prepared.report_set)
        return evaluate(self.prepared.report_set.labels, scores).as_dict()

    def describe_data(self) -> dict:
        summary = self.prepared.summary
        return {"data": str(self.settings.data), "reported_split": self.prepared.report_split,
                "impressions": summary["impressions"], "news_in_catalog": summary["news_in_catalog"],
                "news_with_row": summary["news_with_row"], "users": summary["users"]}

    def run(self, variant: Variant, inputs: NewsInputs | None = None, extra: dict | None = None) -> RunResult:
        """Train ``variant`` (or reuse its finished run) and score the reported split.

        ``inputs`` replaces the prepared news inputs (the coverage experiment hides text vectors),
        and ``extra`` records in the settings what such a replacement changed, so that a run with
        other inputs is never mistaken for this one.
        """
        config = dataclasses.replace(self.base_model, **variant.model)
        train_config = self.settings.train_config(**variant.train)
        run_dir = self.directory / "runs" / variant.key
        settings = _as_json({"model": dataclasses.asdict(config), "train": dataclasses.asdict(train_config),
                             "data": self.describe_data(), "extra": extra or {}})
        record = _read_record(run_dir)
        reason = _restart_reason(record, settings, self.settings.fresh, run_dir)
        if reason is not None:
            logger.info("%s: starting %s over (%s)", self.name, run_dir, reason)
            shutil.rmtree(run_dir)
            record = None

        model = Recommender(config, inputs if inputs is not None else self.prepared.inputs)
        parameters = model.num_parameters()
        if record is not None and "result" in record:
            best, _ = checkpoint.load_model(run_dir / "model")
            model.load_state_dict(best.state_dict())
            stored = record["result"]
            logger.info("%s %s: reusing the finished run in %s", self.name, variant.label, run_dir)
            return RunResult(variant.label, variant.key, model, stored["epochs"], stored["best_epoch"],
                             stored["validation"], stored["reported"], stored["seconds_per_epoch"],
                             tuple(stored["initial_range"]), parameters,
                             cpu_seconds_per_epoch=stored.get("cpu_seconds_per_epoch"), reused=True)

        run_dir.mkdir(parents=True, exist_ok=True)
        if record is None:
            record = {"settings": settings, "initial_range": score_range(model, self.prepared.valid_set)}
            write_text_atomic(run_dir / RUN_FILE, json.dumps(record, indent=2))
        logger.info("%s %s: training %s in %s (%s parameters)", self.name, variant.label,
                    _describe(variant), run_dir, f"{parameters:,}")
        trainer = Trainer(model, self.prepared.train_set, self.prepared.valid_set, train_config, run_dir,
                          self.prepared.user_ids, progress=self.settings.progress)
        trainer.resume()
        if self.prepared.text_encoder is not None and "text" in config.views:
            # Saved beside the model so that minirec-recommend can embed news added after training.
            (run_dir / "model").mkdir(parents=True, exist_ok=True)
            self.prepared.text_encoder.save(run_dir / "model" / LSA_FILE)
        # Processor time, unlike wall-clock time, barely depends on what else runs on the machine.
        whole_epochs = trainer.next_batch == 0
        epochs_before, cpu_started = len(trainer.history), time.process_time()
        history = [dataclasses.asdict(summary) for summary in trainer.fit()]
        epochs_now = len(history) - epochs_before
        cpu_per_epoch = (time.process_time() - cpu_started) / epochs_now if whole_epochs and epochs_now else None

        started = time.monotonic()
        scores = model.predict(self.prepared.report_set)
        reported = evaluate(self.prepared.report_set.labels, scores).as_dict()
        best_epoch = trainer.stopper.best_epoch
        result = RunResult(variant.label, variant.key, model, history, best_epoch,
                           history[best_epoch - 1]["validation"], reported,
                           float(np.mean([h["seconds"] for h in history])), tuple(record["initial_range"]),
                           parameters, cpu_seconds_per_epoch=cpu_per_epoch, _report_scores=scores)
        logger.info("%s %s: best epoch %d, validation AUC %.4f; reported AUC %.4f, MRR %.4f (scored in %.1fs)",
                    self.name, variant.label, best_epoch, result.validation["auc"], reported["auc"],
                    reported["mrr"], time.monotonic() - started)
        record["result"] = {k: v for k, v in result.summary().items() if k not in ("label", "key", "parameters")}
        write_text_atomic(run_dir / RUN_FILE, json.dumps(_as_json(record), indent=2))
        return result

    def report_scores(self, result: RunResult) -> list[np.ndarray]:
        """Return the click probabilities of ``result``'s model on the reported split, per impression."""
        if result._report_scores is None:
            result._report_scores = result.model.predict(self.prepared.report_set)
        return result._report_scores


# The table sizes that prepare() fills into the ModelConfig it is given.
_SIZE_FIELDS = ("num_news", "num_news_ids", "num_users", "num_categories", "num_entities", "text_dim")
# The last data setting prepared in this process, so that experiments run one after another in one
# process (the tests, a notebook) prepare the same data once. It keeps one entry only, to bound memory
# on large datasets.
_PREPARED: dict = {}


def prepare_once(options: RunOptions) -> tuple[PreparedData, ModelConfig]:
    """Return ``prepare(options)`` and the model settings with their table sizes filled in.

    A call with the same data folder (same files, sizes and modification times) and the same
    settings that prepare() reads as the previous call returns the previous result.
    """
    key = _data_key(options)
    if key in _PREPARED:
        prepared, sizes = _PREPARED[key]
        logger.info("reusing the data prepared earlier in this process from %s", options.data)
        return prepared, dataclasses.replace(options.model, **sizes)
    _PREPARED.clear()
    prepared = prepare(options)
    _PREPARED[key] = (prepared, {name: getattr(options.model, name) for name in _SIZE_FIELDS})
    return prepared, options.model


def _data_key(options: RunOptions) -> tuple:
    files = sorted((str(path), path.stat().st_size, path.stat().st_mtime_ns)
                   for path in Path(options.data).resolve().rglob("*") if path.is_file())
    model, train = options.model, options.train
    return (tuple(files), options.text_dim, str(options.text_embeddings), str(options.text_ids), tuple(model.views),
            model.entity_dim, model.history_length, model.seed, train.max_impressions, train.validation_fraction)


def score_range(model: Recommender, impressions) -> list[float]:
    """Return the lowest and highest score that ``model`` gives any candidate of ``impressions``."""
    scores = np.concatenate(model.predict(impressions))
    return [float(scores.min()), float(scores.max())]


def _describe(variant: Variant) -> str:
    changes = {**variant.model, **variant.train}
    return ", ".join(f"{k}={v}" for k, v in changes.items()) or "the default settings"


def _restart_reason(record: dict | None, settings: dict, fresh: bool, run_dir: Path) -> str | None:
    """Return why the run in ``run_dir`` must start over, or None when it can be reused or resumed."""
    if record is None:
        return None
    if fresh:
        return "--fresh"
    if record.get("settings") != settings:
        return "its settings differ"
    if "result" in record and not (run_dir / "model" / checkpoint.MODEL_FILE).exists():
        return "its model is missing"
    return None


def _read_record(run_dir: Path) -> dict | None:
    path = run_dir / RUN_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        logger.warning("%s is not valid JSON (%s): the run starts over", path, error)
        return {}


def _as_json(value):
    """Return ``value`` as JSON would read it back (tuples become lists), so records compare equal."""
    return json.loads(json.dumps(value, default=str))

"""Training: collect real experience, replay it as sequences, one generic trainer, checkpoints.

Public surface::

    from wmenv.train import train, TrainingRun, Schedule     # the one training entry point
    from wmenv.train import collect, make_replay, sample_sequences, Trainer, TrainerConfig
    from wmenv.train import save_checkpoint, load_checkpoint, load_model
"""

from wmenv.train.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    load_model,
    save_checkpoint,
    space_from_dict,
    space_to_dict,
)
from wmenv.train.collect import Collector, CollectStats, collect, make_env
from wmenv.train.logging import MetricLogger, plot_metrics
from wmenv.train.replay import (
    ROW_KEYS,
    load_replay,
    make_replay,
    replay_as_tensordict,
    sample_sequences,
    save_replay,
)
from wmenv.train.runinfo import RunInfo, new_run_dir, read_run_info
from wmenv.train.session import Schedule, TrainingRun, train
from wmenv.train.trainer import Trainer, TrainerConfig

__all__ = [
    "train",
    "TrainingRun",
    "Schedule",
    "RunInfo",
    "read_run_info",
    "new_run_dir",
    "collect",
    "Collector",
    "CollectStats",
    "make_env",
    "make_replay",
    "sample_sequences",
    "replay_as_tensordict",
    "save_replay",
    "load_replay",
    "ROW_KEYS",
    "Trainer",
    "TrainerConfig",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "space_to_dict",
    "space_from_dict",
    "FORMAT_VERSION",
    "MetricLogger",
    "plot_metrics",
]

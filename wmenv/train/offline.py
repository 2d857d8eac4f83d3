"""Offline training: any registered family trained from a dataset, with no env interaction.

``wmenv train MODEL --dataset DATA [--steps N]`` (or ``wmenv.train.train(MODEL, dataset=DATA)``)
builds an :class:`OfflineTrainingRun`: the model is built for the dataset's spaces, batches come
from the dataset's train split (:meth:`wmenv.train.dataset.Dataset.replay`, read lazily from the
memory-mapped shards), and every ``log_every`` updates the loss on a fixed set of val-split batches
is logged next to the train loss (``val/loss``, ``val/loss_*`` and the model's other scalars under
``val/``; also at step 0). No Collector is made.

The run directory is the one every run has (``checkpoint.pt``, ``run.json``, ``metrics.csv``, a
replay snapshot), so ``wmenv.open_run`` works on it: its :class:`~wmenv.train.runinfo.RunInfo`
records the manifest's env id, ``make_env`` arguments and time limit (the real env stays known),
and the replay snapshot holds the first ``start_rows`` rows of the val split (the train split when
there is no val split), from which imagined episodes start. The dataset itself is not copied: the
run records its absolute path and fingerprint (``run.json`` field ``dataset``; checkpoint
``extra["user_state"]["dataset"]``, read by :func:`run_dataset`). ``wmenv train --resume RUN``
continues it (model, optimizers, step, RNG, the dataset sampler's RNG), from the recorded path or
from ``--dataset NEW_PATH`` if the dataset moved.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase
from tqdm.auto import tqdm

from wmenv.config import apply_overrides
from wmenv.core.errors import CheckpointError, ConfigError, RunDirError
from wmenv.train.dataset import Dataset, open_dataset
from wmenv.train.replay import make_replay, sample_sequences
from wmenv.train.runinfo import RunInfo, new_run_dir
from wmenv.train.session import Schedule, TrainingRun, seed_everything, trainer_config_for
from wmenv.train.trainer import REPLAY_SCRATCH, Trainer, TrainerConfig

__all__ = ["OfflineRunInfo", "OfflineTrainingRun", "run_dataset", "plot_train_val", "DATASET_STATE"]

#: ``trainer.user_state`` key of an offline run's dataset record (its presence marks an offline run).
DATASET_STATE = "dataset"
_RNG_STATE = "dataset_rng"
_OFFLINE_SCHEDULE = {"seed_steps": 0, "collect_every": 0, "collect_steps": 0, "num_envs": 1}


@dataclass(frozen=True)
class OfflineRunInfo(RunInfo):
    """:class:`RunInfo` of a run trained from a dataset; ``dataset`` is ``{"path", "id", "env_id", "rows", ...}``.

    Readers that know only :class:`RunInfo` ignore the extra field (the run still opens everywhere).
    """

    dataset: dict[str, Any] = field(default_factory=dict)


def run_dataset(run: Any) -> dict[str, Any] | None:
    """The dataset record of an offline run (a ``wmenv.open_run`` result or a loaded checkpoint dict),
    ``None`` for a run trained online. ``open_dataset(record["path"])`` opens the data."""
    meta = getattr(run, "meta", run)
    extra = meta.get("extra") if isinstance(meta, Mapping) else None
    user = extra.get("user_state") if isinstance(extra, Mapping) else None
    record = user.get(DATASET_STATE) if isinstance(user, Mapping) else None
    return dict(record) if isinstance(record, Mapping) else None


def _scalars(out: Any) -> dict[str, torch.Tensor]:
    items = out.items(True, True) if isinstance(out, TensorDictBase) else dict(out).items()
    flat = {("/".join(k) if isinstance(k, tuple) else str(k)): v for k, v in items}
    return {k: v.detach().float().reshape(()) for k, v in flat.items()
            if isinstance(v, torch.Tensor) and v.numel() == 1}


class OfflineTrainingRun(TrainingRun):
    """A model training on a dataset (see the module docstring). Build it with :meth:`start` or
    :meth:`resume`; :meth:`run` trains to ``config.steps`` updates and saves.

    Args:
        trainer: the run's trainer (its replay is the small start-state replay).
        spec: the model's registry spec.
        dataset: the opened dataset.
        progress: progress bar.
        val_batches: val-split batches the val loss averages over (fixed for the whole run).
    """

    def __init__(self, trainer: Trainer, spec: Any, dataset: Dataset, *, progress: bool = True,
                 val_batches: int = 4) -> None:
        super().__init__(trainer, spec, Schedule(**_OFFLINE_SCHEDULE), progress=progress)
        if isinstance(val_batches, bool) or not isinstance(val_batches, int) or val_batches < 0:
            raise ConfigError(f"val_batches must be an int >= 0, got {val_batches!r}")
        self.dataset, self.val_batches = dataset, val_batches
        c = trainer.config
        self.train_buffer = dataset.replay("train", seq_len=c.seq_len, seed=c.seed)
        saved = trainer.user_state.get(_RNG_STATE)
        if isinstance(saved, torch.Tensor):
            try:
                self.train_buffer._rng.set_state(saved)
            except (RuntimeError, ValueError, TypeError) as err:
                raise CheckpointError(f"the dataset sampler state saved in {trainer.run_dir} is invalid: {err}") from err
        self._val: list[TensorDictBase] | None = None
        trainer.before_save.append(self._remember_rng)

    # ------------------------------------------------------------------ construction
    @classmethod
    def start(  # type: ignore[override]
        cls,
        model: str,
        dataset: str | os.PathLike | Dataset,
        *,
        steps: int | None = None,
        preset: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        seed: int = 0,
        trainer: TrainerConfig | Mapping[str, Any] | None = None,
        run_dir: str | os.PathLike | None = None,
        runs_root: str | os.PathLike = "runs",
        start_rows: int = 2048,
        val_batches: int = 4,
        device: str | None = None,
        progress: bool = True,
        producer: str = "wmenv.train",
    ) -> OfflineTrainingRun:
        """A new run of registered ``model`` on a dataset.

        Args:
            model: registered model name.
            dataset: a dataset directory (``wmenv collect ... --shard-size S``) or an opened :class:`Dataset`.
            steps: total gradient updates (default: the trainer config's).
            preset, overrides: model config preset and dot-notation overrides.
            seed: seeds torch, NumPy, ``random`` and the dataset sampler.
            trainer: a full :class:`TrainerConfig`, or overrides of the preset's one.
            run_dir, runs_root: the new run directory (default ``runs_root/<time>_<model>_<dataset name>``).
            start_rows: rows of real data kept in the run for imagination start states.
            val_batches: val batches the val loss averages over.
            device: torch device (overrides the trainer config's).
            progress: progress bar.
            producer: recorded in the run metadata.

        Raises:
            CheckpointError: a missing or corrupt dataset. UnknownModelError / ConfigError: before anything
            is written.
        """
        from wmenv.registry import create_config, create_model, get_model_spec
        from wmenv.train.checkpoint import wmenv_version

        if isinstance(start_rows, bool) or not isinstance(start_rows, int) or start_rows < 1:
            raise ConfigError(f"start_rows must be an int >= 1, got {start_rows!r}")
        ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
        spec = get_model_spec(model)
        config = create_config(spec.name, preset, dict(overrides or {}))
        tconf = trainer if isinstance(trainer, TrainerConfig) else trainer_config_for(spec, preset, seed, trainer)
        flags = {"steps": steps, "device": device, "progress": None if progress else False}
        tconf = apply_overrides(tconf, {k: v for k, v in flags.items() if v is not None})
        from wmenv.train.distributed import init_distributed

        if init_distributed(tconf.device).active:
            raise ConfigError("offline training (--dataset) runs in one process; drop --nproc / torchrun")
        seed_everything(seed)
        net = create_model(spec.name, observation_space=ds.observation_space, action_space=ds.action_space,
                           config=config)
        path = new_run_dir(runs_root, f"{spec.name}_{ds.path.name}", run_dir=run_dir)
        split = "val" if ds.num_rows("val") else "train"
        n = min(int(start_rows), ds.num_rows(split))
        replay = make_replay(n, path / REPLAY_SCRATCH, slice_len=tconf.seq_len, seed=seed)
        replay.extend(ds.gather(split, np.arange(n)))
        trainer_obj = Trainer(net, replay, tconf, path, model_name=spec.name, model_config=config,
                              family=spec.family, observation_space=ds.observation_space,
                              action_space=ds.action_space)
        record = {
            "path": str(ds.path.resolve()), "id": ds.id, "env_id": ds.env_id,
            "rows": {"train": ds.num_rows("train"), "val": ds.num_rows("val")},
            "start_rows": {"split": split, "rows": n},
        }
        trainer_obj.run_info = OfflineRunInfo(
            model=spec.name, family=spec.family, env_id=ds.env_id, env_kwargs=dict(ds.env_kwargs), preset=preset,
            overrides={k: str(v) for k, v in dict(overrides or {}).items()}, seed=int(seed),
            max_episode_steps=ds.max_episode_steps, schedule=dict(_OFFLINE_SCHEDULE), producer=producer,
            wmenv_version=wmenv_version(), dataset=record,
        )
        trainer_obj.user_state = {"env_steps": 0, DATASET_STATE: record}
        return cls(trainer_obj, spec, ds, progress=progress, val_batches=val_batches)

    @classmethod
    def resume(  # type: ignore[override]
        cls,
        run_dir: str | os.PathLike,
        *,
        dataset: str | os.PathLike | None = None,
        trainer: Mapping[str, Any] | None = None,
        progress: bool = True,
    ) -> OfflineTrainingRun:
        """Continue the offline run in ``run_dir`` (``dataset``: its new location if it moved).

        Raises:
            RunDirError: no run or checkpoint there; not an offline run; its dataset is gone or changed.
        """
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RunDirError(f"cannot resume {run_dir}: no such run directory")
        overrides = {k: v for k, v in dict(trainer or {}).items() if v is not None}
        if not progress:
            overrides["progress"] = False
        return cls.attach(Trainer.resume(run_dir, overrides=overrides), dataset=dataset, progress=progress)

    @classmethod
    def attach(cls, trainer: Trainer, *, dataset: str | os.PathLike | None = None,
               progress: bool = True) -> OfflineTrainingRun:
        """An offline run around a resumed :class:`Trainer` (what ``TrainingRun.resume`` hands offline runs to)."""
        from wmenv.registry import get_model_spec
        from wmenv.train.checkpoint import space_to_dict

        record = trainer.user_state.get(DATASET_STATE)
        try:
            if getattr(getattr(trainer, "dist", None), "active", False):
                raise ConfigError("offline training (--dataset) runs in one process; drop --nproc / torchrun")
            if not isinstance(record, dict) or not isinstance(record.get("path"), str):
                raise RunDirError(f"{trainer.run_dir} is not a run trained from a dataset; resume it with "
                                  "wmenv train --resume (without --dataset)")
            path = Path(dataset) if dataset is not None else Path(record["path"])
            try:
                ds = open_dataset(path)
            except CheckpointError as err:
                raise RunDirError(f"cannot resume {trainer.run_dir}: its dataset {path} cannot be opened ({err}); "
                                  "if it moved, pass --dataset NEW_PATH") from err
            if ds.id != record.get("id"):
                raise RunDirError(f"cannot resume {trainer.run_dir}: {path} is not the dataset it trained on "
                                  f"(fingerprint {ds.id!r}, the run recorded {record.get('id')!r})")
            for kind in ("observation_space", "action_space"):
                if space_to_dict(getattr(ds, kind)) != space_to_dict(getattr(trainer, kind)):
                    raise RunDirError(f"cannot resume {trainer.run_dir}: the dataset's {kind} differs from the model's")
        except BaseException:
            trainer.close()
            raise
        if dataset is not None:
            record = {**record, "path": str(ds.path.resolve())}
            trainer.user_state[DATASET_STATE] = record
        info = trainer.run_info
        base = info.to_dict() if info is not None else {"model": trainer.model_name, "family": trainer.family}
        base.pop("dataset", None)
        trainer.run_info = OfflineRunInfo(**base, dataset=record)
        return cls(trainer, get_model_spec(trainer.model_name), ds, progress=progress)

    # ------------------------------------------------------------------ collection: none
    def collect(self, steps: int, policy: Any = None) -> Any:
        raise ConfigError("an offline run does not collect; train it from its dataset")

    def _remember_rng(self) -> None:
        self.trainer.user_state[_RNG_STATE] = self.train_buffer._rng.get_state()

    # ------------------------------------------------------------------ validation
    def val_batches_fixed(self) -> list[TensorDictBase]:
        """The val batches of the run (drawn once with the run seed; empty without a usable val split)."""
        if self._val is None:
            self._val = []
            c = self.trainer.config
            if self.val_batches and self.dataset.num_rows("val"):
                buffer = self.dataset.replay("val", seq_len=c.seq_len, seed=c.seed + 1)
                try:
                    self._val = [sample_sequences(buffer, c.batch_size, c.seq_len).clone()
                                 for _ in range(self.val_batches)]
                except ConfigError as err:
                    warnings.warn(f"no val loss: {err}", stacklevel=2)
            elif self.val_batches:
                warnings.warn(f"no val loss: the dataset {self.dataset.path} has no val episodes (collected "
                              "with --val-ratio 0, or it holds a single episode)", stacklevel=2)
        return self._val

    def validate(self) -> dict[str, float]:
        """Mean ``loss_*`` sum (``val/loss``) and every scalar of ``model.loss`` (``val/<key>``) over the val
        batches, in ``eval()`` mode, without gradients and without moving torch's RNG."""
        batches = self.val_batches_fixed()
        if not batches:
            return {}
        model, device = self.model, self.trainer.device
        sums: dict[str, float] = {}
        was_training = model.training
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            try:
                for batch in batches:
                    scalars = _scalars(model.loss(batch.to(device)))
                    scalars["loss"] = sum((v for k, v in scalars.items() if k.startswith("loss_")), torch.zeros(()))
                    for k, v in scalars.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
            finally:
                model.train(was_training)
        return {f"val/{k}": v / len(batches) for k, v in sums.items()}

    def preview_batch(self) -> Any:
        """The first val batch (the same sequences at every preview), else a few train sequences."""
        batches = self.val_batches_fixed()
        if batches:
            return batches[0][:4]
        from wmenv.train.preview import replay_preview_batch

        return replay_preview_batch(self.train_buffer, self.trainer.config.seq_len)

    # ------------------------------------------------------------------ the loop
    def _log(self, sums: Mapping[str, torch.Tensor], count: int, bar: Any) -> None:
        t = self.trainer
        row = {k: float(v) / count for k, v in sums.items()} if count else {}
        if row:
            for name, opt in t.optimizers.items():
                row[f"lr/{name}"] = float(opt.param_groups[0]["lr"])
        row.update(self.validate())
        if not row:
            return
        t.logger.log(t.step, row)
        t.history.append({"step": float(t.step), **row})
        if "loss" in row:
            shown = {"loss": f"{row['loss']:.4g}"}
            if "val/loss" in row:
                shown["val"] = f"{row['val/loss']:.4g}"
            bar.set_postfix(shown, refresh=False)

    def run(self) -> Path:
        """Train from the dataset until ``config.steps`` updates (val loss every ``log_every``); save.

        Returns:
            The checkpoint path.
        """
        t, c = self.trainer, self.trainer.config
        bar = tqdm(total=max(c.steps - t.step, 0), desc="train", unit="upd", disable=not c.progress,
                   dynamic_ncols=True)
        if t.step == 0 and not t.history:
            self._log({}, 0, bar)  # the val loss of the untrained model
        sums: dict[str, torch.Tensor] = {}
        count = 0
        while t.step < c.steps:
            metrics = t.update(sample_sequences(self.train_buffer, c.batch_size, c.seq_len))
            for k, v in metrics.items():
                sums[k] = sums[k] + v if k in sums else v
            count += 1
            bar.update(1)
            if t.step % c.log_every == 0:
                self._log(sums, count, bar)
                sums, count = {}, 0
            if c.checkpoint_every and t.step % c.checkpoint_every == 0:
                t.save()
        if count:
            self._log(sums, count, bar)
        bar.close()
        return self.save()

    def close(self, plot: bool = True) -> None:
        """Close the logger; plot ``metrics.png`` (each loss, train and val on one panel) from ``metrics.csv``."""
        super().close(plot=False)
        csv_path = self.run_dir / "metrics.csv"
        if plot and csv_path.is_file():
            plot_train_val(csv_path, self.run_dir / "metrics.png")


def plot_train_val(csv_path: str | os.PathLike, out_png: str | os.PathLike) -> Path | None:
    """One panel per loss key of ``metrics.csv``: the train curve (``loss_x``) and the val curve
    (``val/loss_x``) on the same axes. ``None`` when the file holds no loss yet."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from wmenv.train.logging import read_metrics

    series: dict[str, tuple[list[int], list[float]]] = {}
    for step, key, value in read_metrics(csv_path):
        xs, ys = series.setdefault(key, ([], []))
        xs.append(step)
        ys.append(value)
    bases = sorted({k.removeprefix("val/") for k in series if k.removeprefix("val/").startswith("loss")},
                   key=lambda k: (k != "loss", k))
    if not bases:
        return None
    cols = min(3, len(bases))
    rows = -(-len(bases) // cols)
    fig = Figure(figsize=(4.2 * cols, 2.8 * rows), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax, key in zip(axes, bases, strict=False):
        for name, style in ((key, "-"), (f"val/{key}", "--")):
            if name in series:
                ax.plot(*series[name], style, lw=1.2, label="val" if name.startswith("val/") else "train")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in axes[len(bases):]:
        ax.set_visible(False)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.12, top=0.9, wspace=0.3, hspace=0.5)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out

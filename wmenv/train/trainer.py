"""One generic training loop for every family: sample sequences → ``model.loss`` → step → log → checkpoint.

The contract a trainable model follows:

- ``model.loss(batch: TensorDict[B, T]) -> TensorDict`` (or mapping) of scalars. Entries whose key
  starts with ``loss_`` are summed for one ``backward``; every other scalar (nested keys become
  ``a/b``) is a detached metric that is logged.
- optional ``model.optim_groups() -> dict[str, dict]``: one AdamW per group, each
  ``{"params": [...], "lr": float, "eps": float, "grad_clip": float | None, "weight_decay": float}``
  (missing entries default to the :class:`TrainerConfig` values). Default: one group ``"model"``.
- optional ``model.after_update(step)`` called after each optimizer step (e.g. target-critic EMA).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from tensordict import TensorDictBase
from torchrl.data import ReplayBuffer
from tqdm.auto import tqdm

from wmenv.config import apply_overrides, config_from_dict, config_to_dict
from wmenv.core.errors import CheckpointError, ConfigError, ModelOutputError, RunDirError
from wmenv.train.checkpoint import (
    clean_stale_temp_files,
    get_rng_state,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from wmenv.train.distributed import LossModule, init_distributed
from wmenv.train.logging import MetricLogger
from wmenv.train.replay import load_replay, sample_sequences, save_replay
from wmenv.train.runinfo import RunInfo, read_run_info, write_run_json

__all__ = ["TrainerConfig", "Trainer", "resolve_device", "replay_scratch"]

CHECKPOINT = "checkpoint.pt"
REPLAY_SCRATCH = "replay_scratch"


@dataclass(frozen=True)
class TrainerConfig:
    """Optimisation and bookkeeping settings of :class:`Trainer`.

    Model settings live in the family's own config.
    """

    steps: int = 10_000
    """Total gradient updates of a run (``wmenv train`` trains until ``trainer.step`` reaches it)."""
    batch_size: int = 16
    """Sequences per batch ``B``."""
    seq_len: int = 64
    """Rows per sequence ``T`` (consecutive steps of one episode)."""
    lr: float = 1e-4
    """Learning rate of the default parameter group."""
    eps: float = 1e-8
    """Adam epsilon of the default group."""
    weight_decay: float = 0.0
    """Decoupled (AdamW) weight decay of the default group."""
    grad_clip: float | None = 100.0
    """Max global grad norm per group (``None``: no clipping, the norm is still logged)."""
    log_every: int = 50
    """Log averaged metrics every this many updates."""
    checkpoint_every: int = 1000
    """Write ``run_dir/checkpoint.pt`` every this many updates (0: only on ``save()``)."""
    amp: bool = False
    """Mixed precision (float16 autocast + GradScaler); only takes effect on CUDA."""
    device: str = "cpu"
    """Torch device, or ``"auto"`` for CUDA when available."""
    seed: int = 0
    """Seed of the run (the CLI seeds torch, numpy and random with it)."""
    tensorboard: bool = True
    """Also log to TensorBoard in ``run_dir/tb``."""
    check_finite: bool = True
    """Raise ``ModelOutputError`` when the summed loss is NaN/inf (instead of training on it)."""
    progress: bool = True
    """Show a tqdm bar during ``train``."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "seq_len", "log_every", "checkpoint_every"):
            value = getattr(self, name)
            low = 0 if name in ("steps", "checkpoint_every") else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"TrainerConfig.{name} must be an int >= {low}, got {value!r}")
        for name in ("lr", "eps"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"TrainerConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.weight_decay < 0 or (self.grad_clip is not None and not self.grad_clip > 0):
            raise ConfigError(
                f"TrainerConfig: need weight_decay >= 0 and grad_clip > 0 or None, got {self.weight_decay!r} "
                f"and {self.grad_clip!r}"
            )
        try:
            resolve_device(self.device)
        except (RuntimeError, ValueError) as err:
            raise ConfigError(f"TrainerConfig.device {self.device!r} is not a torch device: {err}") from err

    @classmethod
    def tiny(cls) -> TrainerConfig:
        """Small batches for tests and CPU smoke runs."""
        return cls(steps=200, batch_size=4, seq_len=8, lr=1e-3, log_every=10, checkpoint_every=100)


def replay_scratch(run_dir: str | os.PathLike, rank: int = 0) -> Path:
    """Scratch directory of the replay storage of a run (one per rank under DDP)."""
    return Path(run_dir) / (REPLAY_SCRATCH if rank == 0 else f"{REPLAY_SCRATCH}-rank{rank}")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else → ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Trainer:
    """Trains any model that follows the loss contract on sequences from a replay buffer.

    Args:
        model: ``torch.nn.Module`` with ``loss(batch) -> TensorDict``.
        replay: buffer from :func:`wmenv.train.replay.make_replay` (rows in the stored format).
        config: :class:`TrainerConfig`.
        run_dir: directory for ``checkpoint.pt``, ``metrics.csv``, ``tb/`` and replay snapshots.
        model_name: registry name (recorded in checkpoints; resume rebuilds from it).
        model_config: the model's config dataclass.
        observation_space: defaults to ``model.observation_space``.
        action_space: defaults to ``model.action_space``.
        family: defaults to the registry's family of ``model_name``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        replay: ReplayBuffer,
        config: TrainerConfig,
        run_dir: str | os.PathLike,
        *,
        model_name: str,
        model_config: Any,
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
        family: str | None = None,
    ) -> None:
        if not callable(getattr(model, "loss", None)):
            raise TypeError(
                f"{type(model).__name__} has no loss(batch) method (wmenv.train.trainer contract)"
            )
        self.config = config
        self.dist = init_distributed(config.device)
        self.device = resolve_device(config.device)
        if self.dist.active and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.model = model.to(self.device)
        self.replay = replay
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        clean_stale_temp_files(self.run_dir)  # leftovers of writes a kill interrupted
        self.model_name, self.model_config = model_name, model_config
        self.observation_space = observation_space or getattr(model, "observation_space", None)
        self.action_space = action_space or getattr(model, "action_space", None)
        if self.observation_space is None or self.action_space is None:
            raise TypeError("pass observation_space= and action_space= (the model has no such attributes)")
        if family is None:
            from wmenv.registry import get_model_spec

            family = get_model_spec(model_name).family or model_name
        self.family = family
        self.amp = bool(config.amp and self.device.type == "cuda")
        self.groups = self._make_groups()
        self.optimizers = {
            name: torch.optim.AdamW(g["params"], lr=g["lr"], eps=g["eps"], weight_decay=g["weight_decay"])
            for name, g in self.groups.items()
        }
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self._ddp: torch.nn.Module | None = None
        if self.dist.active:  # gradients averaged over ranks by PyTorch's DistributedDataParallel
            if config.batch_size % self.dist.world:
                raise ConfigError(f"batch_size {config.batch_size} must be divisible by the world size "
                                  f"{self.dist.world} (each rank trains on its slice of the global batch)")
            ids = [self.dist.local_rank] if self.device.type == "cuda" else None
            self._ddp = torch.nn.parallel.DistributedDataParallel(
                LossModule(self.model), device_ids=ids, find_unused_parameters=True)
        self.step = 0
        self.history: list[dict[str, float]] = []
        #: plain data saved with checkpoints for the caller (training progress: env steps, stages)
        self.user_state: dict[str, Any] = {}
        #: how the run was made (:class:`~wmenv.train.runinfo.RunInfo`), saved in every checkpoint
        self.run_info: RunInfo | None = None
        #: called before every checkpoint (e.g. a collector writing the rows of unfinished episodes)
        self.before_save: list[Callable[[], Any]] = []
        self._resume_step: int | None = None
        self._logger: MetricLogger | None = None
        self._snapshot: str | None = None

    # ------------------------------------------------------------------ setup
    def _make_groups(self) -> dict[str, dict[str, Any]]:
        c = self.config
        defaults = {"lr": c.lr, "eps": c.eps, "grad_clip": c.grad_clip, "weight_decay": c.weight_decay}
        hook = getattr(self.model, "optim_groups", None)
        raw = hook() if callable(hook) else {"model": {"params": list(self.model.parameters())}}
        groups: dict[str, dict[str, Any]] = {}
        seen: dict[int, str] = {}
        for name, g in raw.items():
            unknown = set(g) - {"params", *defaults}
            if unknown:
                raise ConfigError(
                    f"optim group {name!r} has unknown keys {sorted(unknown)}; "
                    f"valid: params, {list(defaults)}"
                )
            params = [p for p in g.get("params", []) if p.requires_grad]
            if not params:
                raise ConfigError(f"optim group {name!r} has no trainable parameters")
            dup = next((seen[id(p)] for p in params if id(p) in seen), None)
            if dup is not None:
                raise ConfigError(f"a parameter is in optim groups {dup!r} and {name!r}; give each one group")
            seen.update({id(p): name for p in params})
            groups[name] = {**defaults, **{k: v for k, v in g.items() if k != "params"}, "params": params}
        return groups

    @property
    def logger(self) -> MetricLogger:
        """The run's :class:`MetricLogger` (opened on first use)."""
        if self._logger is None:
            if not self.dist.is_main:  # rank 0 alone writes metrics
                self._logger = _NullLogger()
                return self._logger
            tb, resume = self.config.tensorboard, self._resume_step
            self._logger = MetricLogger(self.run_dir, tensorboard=tb, resume_step=resume)
        return self._logger

    # ------------------------------------------------------------------ training
    def update(self, batch: TensorDictBase) -> dict[str, torch.Tensor]:
        """One optimizer step on ``batch`` ``[B, T]``.

        Returns:
            Detached scalar metrics: every ``loss_*`` entry and metric of ``model.loss``, their sum
            ``loss`` and ``grad_norm/<group>``.
        """
        self.model.train()
        batch = batch.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            out = self._ddp(batch) if self._ddp is not None else self.model.loss(batch)
        if not isinstance(out, TensorDictBase | Mapping):
            raise ModelOutputError(
                f"model.loss must return a TensorDict of scalars, got {type(out).__name__}"
            )
        items = out.items(True, True) if isinstance(out, TensorDictBase) else out.items()
        scalars = {("/".join(k) if isinstance(k, tuple) else str(k)): v for k, v in items}
        losses = {k: v for k, v in scalars.items() if k.startswith("loss_")}
        if not losses:
            raise ModelOutputError(f"model.loss returned no 'loss_*' entry, only {sorted(scalars)}; add one")
        for k, v in losses.items():
            if not isinstance(v, torch.Tensor) or v.numel() != 1:
                raise ModelOutputError(f"{k} must be a scalar tensor, got {getattr(v, 'shape', type(v))}")
        total = sum(v.float().reshape(()) for v in losses.values())
        if self.config.check_finite and not bool(torch.isfinite(total)):
            bad = [k for k, v in losses.items() if not bool(torch.isfinite(v))]
            raise ModelOutputError(
                f"non-finite loss at step {self.step + 1}: {bad}; lower lr or check inputs"
            )
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        metrics: dict[str, torch.Tensor] = {"loss": total.detach()}
        for name, opt in self.optimizers.items():
            self.scaler.unscale_(opt)
            clip = self.groups[name]["grad_clip"]
            params = [p for p in self.groups[name]["params"] if p.grad is not None]
            if params:
                norm = torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else float("inf"))
                metrics[f"grad_norm/{name}"] = norm.detach()
            self.scaler.step(opt)
        self.scaler.update()
        self.step += 1
        after = getattr(self.model, "after_update", None)
        if callable(after):
            after(self.step)
        for k, v in scalars.items():
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                metrics[k] = v.detach().float().reshape(())
            elif isinstance(v, int | float) and not isinstance(v, bool):
                metrics[k] = torch.tensor(float(v))
        return metrics

    def train(self, num_steps: int) -> list[dict[str, float]]:
        """Run ``num_steps`` updates (callable repeatedly). Returns the history entries it logged."""
        if num_steps < 0:
            raise ConfigError(f"num_steps must be >= 0, got {num_steps}")
        c = self.config
        sums: dict[str, torch.Tensor] = {}
        count, start = 0, len(self.history)
        bar = tqdm(total=num_steps, desc="train", unit="upd", disable=not (c.progress and self.dist.is_main),
                   dynamic_ncols=True)
        for _ in range(num_steps):
            batch = sample_sequences(self.replay, c.batch_size, c.seq_len)
            if self.dist.active:  # every rank drew the same global batch; each keeps its slice
                batch = batch[self.dist.rank :: self.dist.world]
            metrics = self.update(batch)
            for k, v in metrics.items():
                sums[k] = sums[k] + v if k in sums else v
            count += 1
            bar.update(1)
            if self.step % c.log_every == 0:
                self._log(sums, count, bar)
                sums, count = {}, 0
            if c.checkpoint_every and self.step % c.checkpoint_every == 0:
                self.save()
        if count:
            self._log(sums, count, bar)
        bar.close()
        return self.history[start:]

    def _log(self, sums: Mapping[str, torch.Tensor], count: int, bar: Any) -> dict[str, float]:
        sums = self.dist.mean(sums)  # metrics of the global batch under DDP
        row = {k: float(v) / count for k, v in sums.items()}
        for name, opt in self.optimizers.items():
            row[f"lr/{name}"] = float(opt.param_groups[0]["lr"])
        self.logger.log(self.step, row)
        entry = {"step": float(self.step), **row}
        self.history.append(entry)
        bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
        return entry

    # ------------------------------------------------------------------ persistence
    def _save_replay_snapshot(self) -> str:
        name = f"replay-{int(self.replay.write_count):012d}"
        target = self.run_dir / name
        if self._snapshot == name and target.exists():
            return name  # unchanged since the last checkpoint
        shutil.rmtree(target, ignore_errors=True)  # an unreferenced leftover of a killed run
        save_replay(self.replay, target)
        return name

    def save(self) -> Path:
        """Atomically write ``run_dir/checkpoint.pt`` (model, optimizers, scaler, RNG, step, history)
        after snapshotting the replay to ``run_dir/replay-<write_count>/`` when it changed."""
        for hook in self.before_save:
            hook()
        if not self.dist.is_main:  # rank 0 alone writes the run directory
            return self.run_dir / CHECKPOINT
        snapshot = self._save_replay_snapshot()
        extra = {
            "trainer_config": config_to_dict(self.config),
            "scaler": self.scaler.state_dict(),
            "rng": get_rng_state(),
            "replay_rng": self.replay._rng.get_state() if self.replay._rng is not None else None,
            "replay_snapshot": snapshot,
            "history": self.history,
            "user_state": self.user_state,
        }
        if self.run_info is not None:
            extra["run"] = self.run_info.to_dict()
        path = save_checkpoint(
            self.run_dir / CHECKPOINT,
            model_name=self.model_name,
            family=self.family,
            config=self.model_config,
            model=self.model,
            optimizers=self.optimizers,
            step=self.step,
            extra=extra,
            observation_space=self.observation_space,
            action_space=self.action_space,
        )
        self._snapshot = snapshot
        if self.run_info is not None:
            write_run_json(self.run_dir, self.run_info, config_to_dict(self.model_config))
        for old in self.run_dir.glob("replay-*"):
            if old.name != snapshot:
                shutil.rmtree(old, ignore_errors=True)
        return path

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, *, overrides: Mapping[str, Any] | None = None) -> Trainer:
        """Rebuild a trainer from ``run_dir/checkpoint.pt``: model, optimizers, GradScaler, replay
        contents, step counter, history and RNG states (torch, CUDA, numpy, random, replay sampler).

        Args:
            run_dir: directory of a run written by :meth:`save`.
            overrides: :class:`TrainerConfig` overrides (e.g. ``{"steps": 20000, "device": "cuda"}``).

        Raises:
            RunDirError: ``run_dir`` or its checkpoint is missing.
            CheckpointError: the checkpoint or replay snapshot is unreadable or does not fit.
        """
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RunDirError(f"cannot resume: run dir {run_dir} does not exist")
        if not (run_dir / CHECKPOINT).is_file():
            raise RunDirError(
                f"cannot resume: {run_dir} has no {CHECKPOINT} (the run saved no checkpoint yet)"
            )
        meta = load_checkpoint(run_dir / CHECKPOINT, map_location="cpu")
        extra = meta["extra"]
        tconf = apply_overrides(config_from_dict(TrainerConfig, extra["trainer_config"]), overrides)
        model = model_from_checkpoint(meta, device=resolve_device(tconf.device), path=run_dir / CHECKPOINT)
        scratch = replay_scratch(run_dir, init_distributed(tconf.device).rank)
        shutil.rmtree(scratch, ignore_errors=True)
        replay = load_replay(run_dir / extra["replay_snapshot"], scratch)
        names = {
            "model_name": meta["model_name"],
            "model_config": meta["config_obj"],
            "family": meta["family"],
        }
        spaces = {
            "observation_space": meta["observation_space_obj"],
            "action_space": meta["action_space_obj"],
        }
        trainer = cls(model, replay, tconf, run_dir, **names, **spaces)
        for name, opt in trainer.optimizers.items():
            if name not in meta["optimizers"]:
                raise CheckpointError(
                    f"checkpoint has no optimizer {name!r}, only {list(meta['optimizers'])}"
                )
            opt.load_state_dict(meta["optimizers"][name])
        trainer.scaler.load_state_dict(extra["scaler"])
        trainer.step = int(meta["step"])
        trainer.history = list(extra.get("history", []))
        trainer.user_state = dict(extra.get("user_state", {}))
        trainer.run_info = read_run_info(meta, run_dir)
        trainer._resume_step = trainer.step
        trainer._snapshot = extra["replay_snapshot"]
        set_rng_state(extra["rng"])
        if extra.get("replay_rng") is not None:
            replay._rng.set_state(extra["replay_rng"])
        return trainer

    def close(self) -> None:
        """Close the metric logger."""
        if self._logger is not None:
            self._logger.close()
            self._logger = None


class _NullLogger:
    """What ranks other than 0 log to: nothing."""

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Drop the row."""

    def close(self) -> None:
        """Nothing to close."""

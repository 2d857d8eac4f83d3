"""The contract (WorldModel, StartStates) and the one batched imagination core."""

from wmenv.core.errors import (
    ArgumentTypeError,
    CheckpointError,
    ConfigError,
    EpisodeEndedError,
    InvalidActionError,
    InvalidArgumentError,
    MissingActionError,
    ModelOutputError,
    ResetNeededError,
    RunDirError,
    UnknownEnvError,
    UnknownModelError,
    UnknownNameError,
    UnsupportedSpaceError,
    WMEnvError,
)
from wmenv.core.imagination import ImaginationCore, ImaginedStep
from wmenv.core.protocol import (
    CallableStartStates,
    ReplayStartStates,
    StartStates,
    TensorDictStartStates,
    WorldModel,
)
from wmenv.core.specs import space_to_spec, spec_to_space

__all__ = [
    "WorldModel",
    "StartStates",
    "CallableStartStates",
    "TensorDictStartStates",
    "ReplayStartStates",
    "ImaginationCore",
    "ImaginedStep",
    "space_to_spec",
    "spec_to_space",
    "WMEnvError",
    "ArgumentTypeError",
    "EpisodeEndedError",
    "InvalidArgumentError",
    "MissingActionError",
    "InvalidActionError",
    "ModelOutputError",
    "ResetNeededError",
    "UnknownNameError",
    "UnknownEnvError",
    "UnknownModelError",
    "ConfigError",
    "UnsupportedSpaceError",
    "CheckpointError",
    "RunDirError",
]

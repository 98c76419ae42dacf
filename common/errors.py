"""Errors a user can fix: the command line prints them as one line, never a traceback."""


class UserError(Exception):
    """Base class of the errors caused by input (config, data, checkpoints), not by a bug."""

    exit_code = 2


class ConfigError(UserError):
    """A config file or override is wrong. `key` is the dotted key at fault, if known."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class DataError(UserError):
    """A dataset file is missing, corrupt or not of the expected form."""


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable or incompatible with the run."""


class TrainingDiverged(UserError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""

    exit_code = 3

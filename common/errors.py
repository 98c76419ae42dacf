"""Errors a user can fix: the command line prints them as one line, never a traceback."""


import re

# "Caught DataError in DataLoader worker process 0.\nOriginal Traceback ...\nmod.DataError: msg"
_WORKER_TRACEBACK = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.\nOriginal "
                               r"Traceback.*\n[\w.]+: (?P<message>.+?)\s*$", re.DOTALL)


class UserError(Exception):
    """Base class of the errors caused by input (config, data, checkpoints), not by a bug.

    Raised in a DataLoader worker, the error reaches the main process rebuilt from a message
    that holds the worker's traceback; the rebuilt error keeps only the original message."""

    exit_code = 2

    def __init__(self, message="", *args):
        found = _WORKER_TRACEBACK.match(str(message))
        super().__init__(found["message"] if found else message, *args)


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


class LoaderWorkerDied(UserError):
    """A data-loading worker process ended on its own (e.g. killed for memory); exit code 3
    like a diverged run: a fault during training, reported in one line with what was kept."""

    exit_code = 3


def first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_failure(path, err: BaseException, magics: tuple[bytes, ...], foreign: str) -> str:
    """Why a file did not load, in words: it is empty, or no `magics` starts it (then `foreign`
    says what it is not), or else the loader's own first line. Loaders that fall back to
    unpickling speak of pickles about any foreign file; this says what the file is instead."""
    try:
        with open(path, "rb") as f:
            head = f.read(max(map(len, magics)))
    except OSError as read_err:
        return read_err.strerror or type(read_err).__name__
    if not head:
        return "the file is empty"
    if not any(head.startswith(magic) for magic in magics):
        return foreign
    return first_line(err)

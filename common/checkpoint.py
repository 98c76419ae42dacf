"""One checkpoint file holds everything needed to continue a run exactly.

Written atomically (temporary file, then rename) and read with `weights_only=True`: it contains
only tensors, numbers, strings, lists and dicts, never pickled code.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from common import config as config_lib
from common import dist
from common import logging as log
from common.errors import CheckpointError, first_line, load_failure

FORMAT = 1


# ---- files ----------------------------------------------------------------------------------
def save(state: dict, path: str | Path) -> Path:
    """torch.save to a temporary file in the same folder, then rename over `path`."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; expected a checkpoint file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # e.g. a file where the folder should be
        raise CheckpointError(f"{path}: the checkpoint could not be written (its folder: "
                              f"{err.strerror or err})") from None
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    for stale in path.parent.glob(f".{path.name}.tmp*"):  # left by a process killed mid-save
        if stale != tmp:
            stale.unlink(missing_ok=True)
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:  # a full disk, a signal: no half-written file stays behind
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            kept = "the previous one is kept" if path.exists() else "none was written before"
            raise CheckpointError(f"{path}: the checkpoint could not be written "
                                  f"({err.strerror or err}); {kept}") from None
        raise
    return path


def read(path: str | Path, what: str, map_location="cpu"):
    """`torch.load(weights_only=True)` of a file (a checkpoint or a foreign weights file), with
    errors that name the file and say what it should have been. A ganrepro checkpoint's
    "model" comes back as the current registry name (common.models.ALIASES)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} not found")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise CheckpointError(f"{path}: not a readable {what} ({_load_failure(path, err)})") \
            from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT and isinstance(obj.get("model"), str):
        from common import models  # a checkpoint of a renamed model: its current name
        obj["model"] = models.canonical(obj["model"])
    return obj


def _load_failure(path: Path, err: Exception) -> str:
    """Why torch.load refused a file, in words (its own text is a page about weights_only)."""
    text = load_failure(path, err, (b"PK", b"\x80"),  # a zip archive, or the legacy pickle
                        "not a PyTorch file (neither a zip archive nor a pickle)")
    if text.startswith("Weights only load failed"):
        return "it holds objects other than tensors and plain containers, which are not loaded"
    return text


def strip_data_parallel(state: dict) -> dict:
    """A state dict without DataParallel's `module.` key prefix (the originals' saves have it)."""
    prefix = "module."
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def load(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    state = read(path, "ganrepro checkpoint", map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT or "nets" not in state:
        raise CheckpointError(f"{path}: not a ganrepro checkpoint (format {FORMAT} expected)")
    return state


def find_latest(run_dir: str | Path) -> Path | None:
    """checkpoints/last.pt of a run directory, else its newest numbered snapshot, else None."""
    folder = Path(run_dir) / "checkpoints"
    if (folder / "last.pt").is_file():
        return folder / "last.pt"
    snaps = sorted(folder.glob("ckpt_*.pt"))
    return snaps[-1] if snaps else None


def resolve(run_or_ckpt: str | Path) -> Path:
    """A checkpoint file, or the newest checkpoint of a run directory."""
    path = Path(run_or_ckpt)
    if path.is_dir():
        found = find_latest(path)
        if found is None:
            raise CheckpointError(f"{path}: run directory has no checkpoints/last.pt or "
                                  "checkpoints/ckpt_*.pt")
        return found
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file or run directory")
    return path


# ---- random number generators -----------------------------------------------------------------
def rng_state(device: torch.device) -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
    }


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


# ---- trainer state ----------------------------------------------------------------------------
def capture(trainer, counters: dict, scaler=None) -> dict:
    """The full state of a run. Every rank must call it (RNG states are gathered); only rank 0
    needs to write the result."""
    rngs = dist.all_gather_objects(rng_state(trainer.device))
    return {
        "format": FORMAT,
        "model": trainer.name,
        "config": config_lib.to_plain(trainer.cfg),
        "counters": dict(counters),
        "nets": {k: v.state_dict() for k, v in trainer.nets.items()},
        "optimizers": {k: v.state_dict() for k, v in trainer.optimizers.items()},
        "schedulers": {k: v.state_dict() for k, v in trainer.schedulers.items()},
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": rngs,
        "extra": trainer.extra_state(),
        "versions": {"torch": str(torch.__version__)},
    }


def load_nets(trainer, state: dict, source: str = "checkpoint", strict: bool = True) -> None:
    """Load network weights (and EMA twins) into a freshly built trainer."""
    nets = state["nets"]
    missing = [k for k in trainer.nets if k not in nets]
    if missing and strict:
        raise CheckpointError(f"{source}: has no weights for network(s) {', '.join(missing)} "
                              f"(it holds {', '.join(nets)})")
    for name, module in trainer.nets.items():
        if name not in nets:
            continue
        try:
            module.load_state_dict(nets[name], strict=strict)
        except RuntimeError as err:
            raise CheckpointError(f"{source}: weights of network {name!r} do not fit the model "
                                  f"built from the config ({first_line(err)})") from None


# Optimizer settings that come from the config (a resume with a changed config applies them);
# everything else in a parameter group (step counts, warm-up calls, flags) is run state.
CONFIG_HYPERPARAMETERS = ("lr", "base_lr", "betas", "beta1", "eps", "weight_decay", "momentum",
                          "clip")


def _groups_settings(opt) -> list[dict]:
    return [{k: g[k] for k in CONFIG_HYPERPARAMETERS if k in g} for g in opt.param_groups]


def restore(trainer, state: dict, scaler=None, source: str = "checkpoint") -> dict:
    """Load everything into a freshly built trainer; return the counters. RNGs are set last.

    When the trainer's config differs from the checkpoint's (--force-resume), the optimizers'
    hyper-parameters (CONFIG_HYPERPARAMETERS) are the new config's, and each change is logged;
    the moments and counters are the checkpoint's. Schedules recompute the learning rate from
    the config at the resumed epoch either way."""
    load_nets(trainer, state, source)
    changed_config = bool(config_lib.differences(state.get("config", {}), trainer.cfg))
    for kind in ("optimizers", "schedulers"):
        have, saved = getattr(trainer, kind), state.get(kind, {})
        if set(have) != set(saved):
            raise CheckpointError(f"{source}: {kind} {sorted(saved)} do not match the model's "
                                  f"{sorted(have)}")
        for name, obj in have.items():
            fresh = _groups_settings(obj) if kind == "optimizers" else None
            obj.load_state_dict(saved[name])
            if fresh is not None and changed_config:
                _apply_settings(name, obj, fresh)
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    trainer.load_extra_state(state.get("extra", {}))
    rngs = state.get("rng") or []
    if rngs:
        mine = rngs[dist.rank()] if dist.rank() < len(rngs) else rngs[0]
        set_rng_state(mine, trainer.device)
    return dict(state["counters"])


def _apply_settings(name: str, opt, fresh: list[dict]) -> None:
    for index, (group, settings) in enumerate(zip(opt.param_groups, fresh)):
        for key, value in settings.items():
            if group.get(key) != value:
                log.log(f"resume with a changed config: optimizer {name} group {index}: "
                        f"{key} {group.get(key)!r} -> {value!r}")
                group[key] = value


def trainer_from_state(state: dict, device: str | torch.device = "cpu",
                       overrides: list[str] | None = None, source: str = "checkpoint"):
    """Rebuild a trainer from a loaded checkpoint's own config and load its networks (eval mode).

    This is how sampling and evaluation tools get a generator: `trainer.sampling_net()` is the
    EMA network where the model keeps one.
    """
    from common import models  # the registry imports the model packages lazily
    if isinstance(device, str):  # the tools' --device: a typo or a missing GPU is one error
        device = dist.resolve_device(device, "--device")
    missing = [k for k in ("model", "config", "counters") if k not in state]
    if missing:
        raise CheckpointError(f"{source}: a ganrepro checkpoint without its {missing[0]!r} entry "
                              "(damaged or written by other code); it cannot rebuild its model")
    declared = models.spec(state["model"])
    cfg = models.load_config(state["model"], state["config"], list(overrides or []), source)
    trainer = declared.build(cfg, torch.device(device))
    load_nets(trainer, state, source)
    for net in trainer.nets.values():
        net.eval()
    trainer.progress.iteration = int(state["counters"].get("iteration", 0))
    return trainer


def load_trainer(run_or_ckpt: str | Path, device: str | torch.device = "cpu",
                 overrides: list[str] | None = None):
    """(trainer, state) from a checkpoint file or a run directory's newest checkpoint."""
    path = resolve(run_or_ckpt)
    state = load(path)
    return trainer_from_state(state, device, overrides, str(path)), state

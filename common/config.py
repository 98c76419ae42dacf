"""Strict YAML configs: a file and `KEY.SUB=VALUE` overrides merged over per-model defaults.

Every model declares its defaults as a nested dict. A config file may only set keys that exist
there, with values of the same type (an int is accepted where a float is expected). Errors name
the key and where the bad value came from (the file or the command line).
"""
from __future__ import annotations

import copy
import difflib
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml
from easydict import EasyDict

from common import precision
from common.errors import ConfigError
from common.seeds import SEED_RANGE_TEXT, seed_in_range

COMMAND_LINE = "command line"
_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

# Keys every training config has: how the common loop drives the run (not what it computes).
RUN_DEFAULTS = {
    "RUN": {
        "SEED": 0,                # seeds weights, noise and data order
        "DEVICE": "auto",         # auto | cpu | cuda | cuda:N
        "PRECISION": "fp32",      # fp32 | bf16 | fp16 (fp16 uses a gradient scaler)
        "CHANNELS_LAST": False,   # networks and images in channels_last memory format
        "COMPILE": False,         # torch.compile the networks
        "COMPILE_MODE": "",       # torch.compile mode ("" = default)
        "CUDA_GRAPHS": False,     # replay each phase as a CUDA graph (trainers that are graph-safe)
        "FUSED_OPTIM": False,     # fused (single-kernel) Adam/AdamW/SGD steps
        "TF32": False,            # allow TF32 matmuls/convolutions on Ampere+ GPUs
        "DETERMINISTIC": False,   # torch.use_deterministic_algorithms
        "WORKERS": 2,             # data loader worker processes per rank
        "THREADS": 0,             # CPU threads of PyTorch's ops (0 = PyTorch's default)
        "MAX_ITERS": 0,           # stop after this many iterations; 0 = the paper's length
        "LOG_EVERY": 50,          # iterations between status lines and stats.jsonl rows
        "SAMPLE_EVERY": 500,      # iterations between sample grids (0 = only at the end)
        "CKPT_EVERY": 500,        # iterations between checkpoints/last.pt (0 = only at the end)
        "SNAPSHOT_EVERY": 0,      # iterations between numbered snapshots (0 = none)
        "NAN_CHECK_EVERY": 25,    # iterations between checks that the losses are finite (each
                                  # check waits for the GPU; checkpoints are always checked first)
        "PROGRESS": "auto",       # auto (bar on a terminal) | bar | lines
    }
}
# Evaluation during training (common.metrics, docs/metrics.md): off while METRICS is empty.
# Rank 0 runs it at the maintenance step and appends one JSON line per number to metrics.jsonl.
EVAL_DEFAULTS = {
    "EVAL": {
        "METRICS": [],            # some of is, fid, kid, pr, attr (e.g. [fid]); [] = none
        "EVERY": 0,               # iterations between evaluations (0 = only at the end)
        "PROTOCOL": "fid10k",     # named protocol (scripts/evaluate.py --list-protocols)
        "N": 0,                   # generated images per evaluation; 0 = the protocol's count
        "REFERENCE": "data",      # real images: data (the DATA section), a folder, a DATA yml
        "EXTRACTOR": "inception-v3-compat",  # torch-fidelity feature extractor
        "WEIGHTS": "",            # its weights file; "" = look in the cache folders
        "CACHE_DIR": "",          # "" = $GANREPRO_CACHE or ~/.cache/ganrepro
        "IS_CLASSIFIER": "",      # a fine-tuned inception_v3 state dict scoring IS instead
        "ATTR_CLASSIFIER": "",    # run of scripts/train_feature_net.py (metric attr)
        "FEATURES": "",           # the project's feature network (fd_* protocols): its run dir
        "BATCH_SIZE": 64,
        "ALLOW_DOWNLOAD": False,  # fetch missing Inception weights from the internet
    }
}
RUN_CHOICES = {
    "RUN.PRECISION": precision.MODES,
    "RUN.PROGRESS": ("auto", "bar", "lines"),
}
# Keys that may change when a run is resumed: they steer the loop, not the computation.
RESUMABLE_KEYS = ("RUN.DEVICE", "RUN.WORKERS", "RUN.MAX_ITERS", "RUN.LOG_EVERY", "RUN.SAMPLE_EVERY",
                  "RUN.CKPT_EVERY", "RUN.SNAPSHOT_EVERY", "RUN.NAN_CHECK_EVERY", "RUN.PROGRESS",
                  "RUN.CHANNELS_LAST", "RUN.COMPILE", "RUN.COMPILE_MODE", "RUN.CUDA_GRAPHS",
                  "RUN.FUSED_OPTIM", "RUN.THREADS",
                  *(f"EVAL.{key}" for key in EVAL_DEFAULTS["EVAL"]),
                  "DATA.OPTIONS.CACHE_MB", "DATASET.CACHE_MB")  # caches: speed, not pixels


class FreeDict(dict):
    """Marks a defaults entry whose keys are not fixed (checked later by whoever reads it).

    `follows` names a sibling key that gives these entries their meaning (DATA.OPTIONS follows
    DATA.KIND): when a config changes that key, the section holds only the entries the config
    sets, not the defaults meant for the default kind.
    """

    def __init__(self, *args, follows: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.follows = follows


def load(path: str | Path | dict | None, defaults: dict, overrides: Iterable[str] = (),
         choices: dict[str, Iterable] | None = None,
         check: Callable[[EasyDict], None] | None = None, source: str | None = None) -> EasyDict:
    """Read `path` (a YAML file, an already-read dict, or None) and `overrides` over
    `defaults`; return the resolved config. `source` names a dict's origin in errors.

    `choices` maps dotted keys to their allowed values; `check(cfg)` may raise ConfigError(key=...)
    for rules that span keys. All errors name the key and the file or command line at fault.
    """
    cfg = copy.deepcopy(defaults)
    origins: dict[str, str] = {}
    if isinstance(path, dict):
        _merge(cfg, copy.deepcopy(path), "", source or "config", origins)
    elif path is not None:
        _merge(cfg, _read_yaml(Path(path)), "", str(path), origins)
    for item in overrides:
        key, value = _parse_override(item)
        _merge(cfg, _nest(key, value), "", COMMAND_LINE, origins)
    _reset_stale_free_sections(cfg, defaults, "", origins)
    all_choices = {**RUN_CHOICES, **(choices or {})}
    for key, allowed in all_choices.items():
        value = get(cfg, key, None)
        if value is not None and value not in tuple(allowed):
            raise ConfigError(f"{origins.get(key, 'defaults')}: {key} is {value!r}; "
                              f"expected one of {', '.join(map(repr, allowed))}", key)
    result = EasyDict(to_plain(cfg))
    if isinstance(result.get("RUN"), dict):
        _check_run(result.RUN, defaults.get("RUN", {}), origins)
    if check is not None:
        try:
            check(result)
        except ConfigError as err:
            where = origins.get(err.key or "", "defaults") if err.key else "config"
            raise ConfigError(f"{where}: {err}", err.key) from None
    return result


RUN_COUNTS = ("MAX_ITERS", "THREADS", "SAMPLE_EVERY", "CKPT_EVERY", "SNAPSHOT_EVERY",
              "NAN_CHECK_EVERY")


def _check_run(run: dict, defaults: dict, origins: dict) -> None:
    """The RUN keys every model shares: a device name, and counts that cannot be negative (a
    negative --max-iters would otherwise mean "the whole schedule"). `defaults` is the model's
    RUN section."""
    from common.dist import DEVICE_PATTERN

    def fail(key: str, expected: str):
        raise ConfigError(f"{origins.get('RUN.' + key, 'defaults')}: RUN.{key} is "
                          f"{run[key]!r}; expected {expected}", f"RUN.{key}")
    if "DEVICE" in run and not (isinstance(run.DEVICE, str) and DEVICE_PATTERN.match(run.DEVICE)):
        fail("DEVICE", "auto, cpu, cuda or cuda:N")
    # a model may default a key to -1, meaning "take it from the original's own key" (StackGAN)
    floors = {**{k: 0 for k in RUN_COUNTS}, "WORKERS": 0, "LOG_EVERY": 1}
    for key, floor in floors.items():
        if key not in run:
            continue
        default = defaults.get(key, floor)
        lowest = -1 if isinstance(default, int) and default < 0 else floor
        if not isinstance(run[key], int) or isinstance(run[key], bool) or run[key] < lowest:
            fail(key, f"an integer >= {lowest}")
    if "SEED" in run and not seed_in_range(run.SEED):
        fail("SEED", SEED_RANGE_TEXT)


def with_run_defaults(model_defaults: dict) -> dict:
    """A model's defaults plus the common RUN and EVAL sections (the model may override their
    entries)."""
    merged = copy.deepcopy({**RUN_DEFAULTS, **EVAL_DEFAULTS})
    for key, value in model_defaults.items():
        if key in ("RUN", "EVAL"):
            merged[key].update(value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def to_plain(cfg: Any) -> Any:
    """EasyDict/tuples -> plain dicts/lists (for YAML files and weights_only checkpoints)."""
    if isinstance(cfg, dict):
        return {str(k): to_plain(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_plain(v) for v in cfg]
    return cfg


def dump(cfg: dict, path: str | Path) -> None:
    """Write the resolved config as YAML (enough to replay the run with --cfg)."""
    Path(path).write_text(yaml.safe_dump(to_plain(cfg), sort_keys=False))


def to_yaml(cfg: dict) -> str:
    return yaml.safe_dump(to_plain(cfg), sort_keys=False)


def require_at_least(cfg: dict, lowest: int, *keys: str) -> None:
    """Each dotted key's value is >= lowest (widths, counts), or one ConfigError naming it."""
    for key in keys:
        value = get(cfg, key)
        if value < lowest:
            raise ConfigError(f"{key} must be at least {lowest}, got {value}", key)


def get(cfg: dict, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def flatten(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """{'A': {'B': 1}} -> {'A.B': 1}."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))  # an empty section adds no keys
        else:
            out[name] = value
    return out


def differences(old: dict, new: dict, ignore: Iterable[str] = RESUMABLE_KEYS) -> list[str]:
    """Human-readable list of keys whose values differ between two configs."""
    a, b = flatten(to_plain(old)), flatten(to_plain(new))
    skip = set(ignore)
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
            for k in sorted(set(a) | set(b)) if k not in skip and a.get(k) != b.get(k)]


# ----------------------------------------------------------------------------------------------
def read_yaml(path: Path, what: str = "config file"):
    """The parsed YAML of a file; a missing, unreadable, non-UTF-8 or invalid file is one
    ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file (YAML expected)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return data


def _read_yaml(path: Path) -> dict:
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of KEY: value at the top level, "
                          f"got {type(data).__name__}")
    return data


def _parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item or item.startswith("="):
        raise ConfigError(f"{COMMAND_LINE}: override {item!r} is not of the form KEY.SUB=VALUE")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        value = text
    return key.strip(), value


def _nest(dotted: str, value: Any) -> dict:
    node: dict = {}
    root = node
    parts = dotted.split(".")
    for part in parts[:-1]:
        node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return root


def _reset_stale_free_sections(cfg: dict, defaults: dict, prefix: str,
                               origins: dict[str, str]) -> None:
    for key, default in defaults.items():
        name = f"{prefix}{key}"
        if isinstance(default, FreeDict) and default.follows:
            sibling = f"{prefix}{default.follows}"
            if sibling in origins and cfg.get(default.follows) != defaults.get(default.follows):
                # keep only the entries a file or override set, not the old kind's defaults
                cfg[key] = FreeDict({k: v for k, v in cfg[key].items()
                                     if f"{name}.{k}" in origins}, follows=default.follows)
        elif isinstance(default, dict) and isinstance(cfg.get(key), dict):
            _reset_stale_free_sections(cfg[key], default, name + ".", origins)


def _merge(base: dict, new: dict, prefix: str, source: str, origins: dict[str, str]) -> None:
    free = isinstance(base, FreeDict)
    for key, value in new.items():
        name = f"{prefix}{key}"
        if key not in base:
            if free:
                base[key] = value
                origins[name] = source
                continue
            hint = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
            suggestion = f" (did you mean {prefix}{hint[0]}?)" if hint else ""
            raise ConfigError(f"{source}: unknown key {name}{suggestion}", name)
        current = base[key]
        if isinstance(current, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {name} must be a section (a mapping of keys), "
                                  f"got {value!r}", name)
            _merge(current, value, name + ".", source, origins)
            continue
        base[key] = coerce_value(current, value, name, source)
        origins[name] = source


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list"}.get(
        type(value), type(value).__name__)


def coerce_value(default: Any, value: Any, name: str, source: str) -> Any:
    if default is None or value is None:
        return value
    wrong = ConfigError(f"{source + ': ' if source else ''}{name} must be {_type_name(default)} like the default "
                        f"{default!r}, got {value!r} ({_type_name(value)})", name)
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise wrong
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value) if abs(value) < 1e308 else math.inf  # float() of a huge int
        elif isinstance(value, str) and _FLOAT_RE.match(value.strip()):
            number = float(value)  # YAML 1.1 reads "2e-4" as a string
        else:
            raise wrong
        if not math.isfinite(number):  # .inf, .nan or 1e400: no setting means that
            raise ConfigError(f"{source + ': ' if source else ''}{name} must be a finite "
                              f"number, got {value!r}", name)
        return number
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise wrong
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise wrong
        if default and all(type(d) is type(default[0]) for d in default):
            return [coerce_value(default[0], v, f"{name}[{i}]", source) for i, v in enumerate(value)]
        return list(value)
    return value

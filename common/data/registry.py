"""Named dataset kinds: each registers a builder, the OPTIONS it accepts (with defaults) and a
check of their values, which runs when a config is loaded, before any file is read."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch.utils.data import Dataset

from common.config import coerce_value
from common.errors import ConfigError


@dataclass
class DataSpec:
    """What a builder receives: the DATA section with OPTIONS checked and completed."""

    kind: str
    root: str
    split: str
    image_size: int
    channels: int
    download: bool
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Kind:
    build: Callable[[DataSpec], Dataset]
    options: dict[str, Any]
    needs_root: bool
    doc: str
    check: Callable[[dict], None] | None = None


KINDS: dict[str, Kind] = {}


def register(name: str, options: dict[str, Any] | None = None, needs_root: bool = True,
             check: Callable[[dict], None] | None = None):
    """Decorator: `@register("mnist", {"PAD": 0}, check=check_mnist)` over `def build(spec)`.

    `check(options)` receives the completed, typed OPTIONS and raises `option_error(...)` for a
    value out of range; it must not touch files (it runs at config load)."""
    def wrap(fn: Callable[[DataSpec], Dataset]):
        KINDS[name] = Kind(fn, dict(options or {}), needs_root, (fn.__doc__ or "").strip(),
                           check)
        return fn
    return wrap


def option_error(key: str, expected: str, value: Any) -> ConfigError:
    """The error of an OPTIONS value: `DATA.OPTIONS.<key> must be <expected>, got <value>`."""
    return ConfigError(f"DATA.OPTIONS.{key} must be {expected}, got {value!r}",
                       f"DATA.OPTIONS.{key}")


def one_of(options: dict, key: str, allowed) -> None:
    """Raise unless options[key] is one of `allowed`."""
    if options[key] not in allowed:
        raise option_error(key, "one of " + ", ".join(map(str, allowed)), options[key])


def min_max(options: dict, key: str, low: float | None = None, high: float | None = None,
            low_open: bool = False) -> None:
    """Raise unless options[key] is [min, max] with min <= max inside [low, high]."""
    value = options[key]
    ok = len(value) == 2 and value[0] <= value[1]
    if ok and low is not None:
        ok = value[0] > low if low_open else value[0] >= low
    if ok and high is not None:
        ok = value[1] <= high
    if not ok:
        bounds = "" if low is None and high is None else \
            f" inside {'(' if low_open else '['}{low if low is not None else '-inf'}, " \
            f"{high if high is not None else 'inf'}]"
        raise option_error(key, f"[min, max] with min <= max{bounds}", value)


def spec_from_config(data_cfg: dict, source: str | None = "config") -> DataSpec:
    """Check a DATA section (kind known, OPTIONS known and typed) and complete its options.

    `source` prefixes error messages (None: no prefix, the caller adds where the key was set).
    """
    where = f"{source}: " if source else ""
    kind = data_cfg.get("KIND")
    if kind not in KINDS:
        raise ConfigError(f"{where}DATA.KIND is {kind!r}; expected one of "
                          f"{', '.join(sorted(KINDS))}", "DATA.KIND")
    entry = KINDS[kind]
    options = dict(entry.options)
    for key, value in (data_cfg.get("OPTIONS") or {}).items():
        if key not in options:
            known = ", ".join(sorted(options)) or "none"
            raise ConfigError(f"{where}unknown key DATA.OPTIONS.{key} for DATA.KIND {kind!r} "
                              f"(its options: {known})", f"DATA.OPTIONS.{key}")
        options[key] = coerce_value(options[key], value, f"DATA.OPTIONS.{key}", source or "")
    if "SEED" in options and not 0 <= options["SEED"] < 2**63:  # numpy takes no negative seed
        raise ConfigError(f"{where}DATA.OPTIONS.SEED is {options['SEED']!r}; expected an integer "
                          "from 0 to 2**63 - 1", "DATA.OPTIONS.SEED")
    if entry.check is not None:
        try:
            entry.check(options)
        except ConfigError as err:
            raise ConfigError(f"{where}{err} (DATA.KIND {kind!r})", err.key) from None
    root = str(data_cfg.get("ROOT") or "")
    if entry.needs_root and not root:
        raise ConfigError(f"{where}DATA.ROOT must name the dataset's location for DATA.KIND "
                          f"{kind!r}", "DATA.ROOT")
    channels = int(data_cfg.get("CHANNELS", 3))
    if channels not in (1, 3):
        raise ConfigError(f"{where}DATA.CHANNELS must be 1 or 3, got {channels}",
                          "DATA.CHANNELS")
    return DataSpec(kind=kind, root=root, split=str(data_cfg.get("SPLIT", "train")),
                    image_size=int(data_cfg.get("IMAGE_SIZE", 64)), channels=channels,
                    download=bool(data_cfg.get("DOWNLOAD", False)), options=options)

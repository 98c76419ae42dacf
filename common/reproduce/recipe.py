"""A claim's recipe (cfg/claims/<name>.yml): its arms, the length per budget, what is measured and
which direction the paper claims. Read strictly: an unknown or missing key is one error naming it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common import config as config_lib
from common.errors import ConfigError

CLAIMS_DIR = Path(__file__).resolve().parents[2] / "cfg" / "claims"
BUDGETS = ("smoke", "cpu", "paper")
PROTOCOL_MEASURE = "protocol"   # the FD/KID/... numbers of the recipe's PROTOCOL


@dataclass(frozen=True)
class Arm:
    name: str
    model: str                    # registered model that trains it (common.models.MODELS)
    cfg: str                      # config file, relative to the repository
    overrides: tuple[str, ...]    # KEY=VALUE; {data} is the data folder, {run:ARM} another arm's run
    label: str


@dataclass(frozen=True)
class Budget:
    name: str
    iters: int                    # training iterations of every arm (equal for all arms)
    points: int                   # snapshots scored along the way (curves), the last included
    n: int                        # generated images per score
    reference_n: int              # real images of the reference (0: the protocol's)
    overrides: tuple[str, ...]    # applied to every arm at this budget (widths, batch, ...)
    minutes: float | None         # estimated minutes per seed for the whole claim (None: unknown)
    where: str                    # the machine the estimate is for
    reduced: str                  # what this budget reduces against the paper, in words
    arm_overrides: dict = field(default_factory=dict)   # {arm: (KEY=VALUE, ...)} at this budget


@dataclass(frozen=True)
class Check:
    """One condition of the claim. Either a comparison (`better` lower|higher: `arm` against each
    of `than`) or a threshold (`arm`'s metric `below` or `above` a value)."""

    metric: str
    arm: str
    better: str = ""
    than: tuple[str, ...] = ()
    below: float | None = None
    above: float | None = None
    why: str = ""


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str
    paper: str
    statement: str
    compares: str
    features: str                 # data set of the project's feature network (mnist, ...) or ""
    protocol: str                 # offline protocol of the FD-style numbers, or ""
    arms: tuple[Arm, ...]
    common: tuple[str, ...]
    budgets: dict
    measures: tuple[str, ...]     # "protocol" and/or "package.module:function"
    checks: tuple[Check, ...]
    notes: str = ""
    prepare: str = ""             # "package.module:function(out, data_dir) -> {placeholder: value}"
    reference: str = ""           # real images of the protocol: "" = the model's data, or a folder
    reference_size: int = 0       # a folder reference: centre crops of this size
    source: str = field(default="", compare=False)

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)


KEYS = {"CLAIM", "MODEL", "PAPER", "STATEMENT", "COMPARES", "FEATURES", "PROTOCOL", "ARMS",
        "COMMON", "BUDGETS", "MEASURES", "CHECKS", "NOTES", "PREPARE", "REFERENCE",
        "REFERENCE_SIZE"}
REQUIRED = {"CLAIM", "MODEL", "PAPER", "STATEMENT", "COMPARES", "ARMS", "BUDGETS", "MEASURES",
            "CHECKS"}
BUDGET_KEYS = {"ITERS", "POINTS", "N", "REFERENCE_N", "OVERRIDES", "ARM_OVERRIDES", "MINUTES", "WHERE",
               "REDUCED"}
CHECK_KEYS = {"METRIC", "ARM", "BETTER", "THAN", "BELOW", "ABOVE", "WHY"}


def names() -> list[str]:
    return sorted(p.stem for p in CLAIMS_DIR.glob("*.yml"))


def load(name_or_path: str) -> Recipe:
    path = Path(name_or_path)
    if path.suffix != ".yml":
        path = CLAIMS_DIR / f"{name_or_path}.yml"
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such claim; known: {', '.join(names())}")
    return parse(config_lib.read_yaml(path, "recipe"), str(path))


def _keys(where: str, raw, allowed: set, required: set) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; expected one of "
                          f"{', '.join(sorted(allowed))}", unknown[0])
    missing = sorted(required - set(raw))
    if missing:
        raise ConfigError(f"{where}.{missing[0]}: missing", missing[0])
    return raw


def _strings(where: str, value) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        raise ConfigError(f"{where}: expected a list of KEY=VALUE strings")
    return tuple(value)


def _arm_overrides(where: str, raw, arm_names: set) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - arm_names:
        raise ConfigError(f"{where}.ARM_OVERRIDES: expected {{arm: [KEY=VALUE, ...]}} with arms "
                          f"among {', '.join(sorted(arm_names))}")
    return {arm: _strings(f"{where}.ARM_OVERRIDES.{arm}", v) for arm, v in raw.items()}


def parse(raw: dict, source: str) -> Recipe:
    raw = _keys(source, raw, KEYS, REQUIRED)
    arms = []
    for name, spec in (raw["ARMS"] or {}).items():
        spec = _keys(f"{source}: ARMS.{name}", spec, {"CFG", "OVERRIDES", "LABEL", "MODEL"},
                     {"CFG"})
        arms.append(Arm(str(name), str(spec.get("MODEL", raw["MODEL"])), str(spec["CFG"]), _strings(f"{source}: ARMS.{name}.OVERRIDES",
                        spec.get("OVERRIDES")), str(spec.get("LABEL", name))))
    if len(arms) < 2:
        raise ConfigError(f"{source}: ARMS: a claim compares at least two arms")
    arm_names = {a.name for a in arms}
    budgets = {}
    for name in BUDGETS:
        where = f"{source}: BUDGETS.{name}"
        spec = _keys(where, (raw["BUDGETS"] or {}).get(name), BUDGET_KEYS,
                     {"ITERS", "POINTS", "N", "MINUTES", "WHERE"})
        for key in ("ITERS", "POINTS", "N"):
            if not isinstance(spec[key], int) or spec[key] < 1:
                raise ConfigError(f"{where}.{key}: expected a positive integer", key)
        budgets[name] = Budget(name, spec["ITERS"], min(spec["POINTS"], spec["ITERS"]), spec["N"],
                               int(spec.get("REFERENCE_N", 0)),
                               _strings(f"{where}.OVERRIDES", spec.get("OVERRIDES")),
                               None if spec["MINUTES"] is None else float(spec["MINUTES"]),
                               str(spec["WHERE"]),
                               str(spec.get("REDUCED", "")).strip(),
                               _arm_overrides(where, spec.get("ARM_OVERRIDES"), arm_names))
    checks = []
    for i, spec in enumerate(raw["CHECKS"] or []):
        where = f"{source}: CHECKS[{i}]"
        spec = _keys(where, spec, CHECK_KEYS, {"METRIC", "ARM"})
        check = Check(str(spec["METRIC"]), str(spec["ARM"]), str(spec.get("BETTER", "")),
                      tuple(spec.get("THAN") or ()), spec.get("BELOW"), spec.get("ABOVE"),
                      str(spec.get("WHY", "")).strip())
        kinds = sum([bool(check.better), check.below is not None, check.above is not None])
        if kinds != 1 or (check.better and (check.better not in ("lower", "higher")
                                            or not check.than)):
            raise ConfigError(f"{where}: give BETTER (lower|higher) with THAN, or BELOW, or ABOVE")
        for arm in (check.arm, *check.than):
            if arm not in arm_names:
                raise ConfigError(f"{where}: unknown arm {arm!r}; arms: {', '.join(arm_names)}")
        checks.append(check)
    if not checks:
        raise ConfigError(f"{source}: CHECKS: a claim needs at least one check")
    measures = tuple(str(m) for m in raw["MEASURES"] or [])
    for m in measures:
        if m != PROTOCOL_MEASURE and ":" not in m:
            raise ConfigError(f"{source}: MEASURES: {m!r} is neither 'protocol' nor "
                              "'package.module:function'")
    if PROTOCOL_MEASURE in measures and not raw.get("PROTOCOL"):
        raise ConfigError(f"{source}: PROTOCOL: the 'protocol' measure needs a protocol name")
    return Recipe(str(raw["CLAIM"]), str(raw["MODEL"]), str(raw["PAPER"]).strip(),
                  str(raw["STATEMENT"]).strip(), str(raw["COMPARES"]).strip(),
                  str(raw.get("FEATURES") or ""), str(raw.get("PROTOCOL") or ""), tuple(arms),
                  _strings(f"{source}: COMMON", raw.get("COMMON")), budgets, measures,
                  tuple(checks), str(raw.get("NOTES", "")).strip(), str(raw.get("PREPARE") or ""),
                  str(raw.get("REFERENCE") or ""), int(raw.get("REFERENCE_SIZE") or 0), source)

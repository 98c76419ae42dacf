"""The feature network a claim is scored with: the one given, else runs/features_<data>, else it is
trained first with cfg/features_<data>.yml on the data folder (at the smoke budget a tiny one,
inside the claim's folder: good for testing the machinery, meaningless as a score)."""
from __future__ import annotations

from pathlib import Path

from common.errors import ConfigError
from common.metrics import feature_net
from common.reproduce.runner import REPO

# minutes on the 2-core CPU machine (accuracy.json train_seconds of the committed floors)
MINUTES = {"mnist": 7.5, "cifar10": 13.8, "celeba": 9.7}
TINY = ["NET.WIDTH=4", "NET.STAGES=3", "TRAIN.BATCH_SIZE=16", "RUN.WORKERS=0",
        "RUN.LOG_EVERY=1000", "RUN.PROGRESS=lines", "HELDOUT.EVERY=50"]


def _data_roots(data: str, data_dir: Path) -> list[str]:
    roots = [f"DATA.ROOT={data_dir / data}"]
    if data == "mnist":
        roots.append(f"MIX.ROOT={data_dir / data}")
    return roots


def ensure(data: str, given: str | None, budget: str, out: Path, data_dir: Path,
           device: str | None, log) -> Path:
    """The run directory of the feature network for `data` (mnist | cifar10 | celeba)."""
    if given:
        path = Path(given)
        if not (path / feature_net.WEIGHTS_FILE).is_file():
            raise ConfigError(f"{path}: no {feature_net.WEIGHTS_FILE} (a run directory of "
                              "scripts/train_feature_net.py)")
        return path
    cfg = REPO / "cfg" / f"features_{data}.yml"
    if budget == "smoke":
        target, extra = out / "features", TINY + ["--max-iters", "4"]
        if data == "mnist":
            extra.append("MIX.KIND=''")
    else:
        target, extra = REPO / "runs" / f"features_{data}", []
    if (target / feature_net.WEIGHTS_FILE).is_file():
        return target
    from common.metrics.train_features import main
    if budget != "smoke":
        log(f"no {data} feature network in {target}: training it first (about "
            f"{MINUTES[data]:g} min on a 2-core CPU)")
    argv = ["--cfg", str(cfg), "--out", str(target), "--resume", "auto",
            *(["--device", device] if device else []), *_data_roots(data, data_dir), *extra]
    if main(argv) != 0:
        raise ConfigError(f"{target}: training the {data} feature network failed (see above)")
    return target

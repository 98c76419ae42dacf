"""The report's plots: each metric against iterations for every arm (mean over seeds, the range
over seeds shaded), the training losses from stats.jsonl, and the samples along training."""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
matplotlib.use("Agg")  # noqa: E402  (files only, no display)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def _axes(count: int, width: float = 4.2, height: float = 3.0):
    cols = min(3, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _band(ax, curves: list[list], label: str) -> None:
    """One arm: curves (one [[iteration, value], ...] per seed) as mean line and min-max band."""
    its = sorted({int(i) for c in curves for i, _ in c})
    table = [[dict((int(i), v) for i, v in c).get(it, np.nan) for c in curves] for it in its]
    values = np.array(table, dtype=float)
    mean = np.nanmean(values, 1)
    line, = ax.plot(its, mean, marker="o", ms=3, label=label)
    if values.shape[1] > 1:
        ax.fill_between(its, np.nanmin(values, 1), np.nanmax(values, 1), alpha=0.2,
                        color=line.get_color())


def metric_curves(curves: dict[str, dict[str, list]], labels: dict[str, str], path: Path) -> Path | None:
    """curves[metric][arm] = one curve per seed."""
    return _panels(curves, labels, path, dpi=90)


def _panels(per_name: dict[str, dict[str, list]], labels: dict[str, str], path: Path,
            dpi: int) -> Path | None:
    """One panel per name, one band per arm (per_name[name][arm] = one curve per seed)."""
    if not per_name:
        return None
    fig, axes = _axes(len(per_name))
    for ax, name in zip(axes, sorted(per_name)):
        for arm, per_seed in per_name[name].items():
            _band(ax, per_seed, labels[arm])
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def read_losses(run_dir: Path, prefix: str = "loss/") -> dict[str, list]:
    """{loss name: [[iteration, value], ...]} from a run's stats.jsonl."""
    out: dict[str, list] = {}
    stats = run_dir / "stats.jsonl"
    if not stats.is_file():
        return out
    for line in stats.read_text().splitlines():
        row = json.loads(line)
        for key, value in row.items():
            if key.startswith(prefix) and isinstance(value, (int, float)):
                out.setdefault(key, []).append([row["iteration"], value])
    return out


def loss_curves(runs: dict[str, list[Path]], labels: dict[str, str], path: Path) -> Path | None:
    """runs[arm] = the run directories of its seeds; one panel per loss name."""
    per_name: dict[str, dict[str, list]] = {}
    for arm, dirs in runs.items():
        for run_dir in dirs:
            for name, curve in read_losses(run_dir).items():
                per_name.setdefault(name, {}).setdefault(arm, []).append(curve)
    return _panels(per_name, labels, path, dpi=80)


def along_training(grids: dict[str, list[tuple[int, Path]]], labels: dict[str, str],
                   path: Path) -> Path | None:
    """One row per arm: its sample grids at each scored iteration."""
    if not grids:
        return None
    cols = max(len(v) for v in grids.values())
    fig, axes = plt.subplots(len(grids), cols, figsize=(2.2 * cols, 2.4 * len(grids)),
                             squeeze=False)
    for row, (arm, items) in enumerate(grids.items()):
        for col in range(cols):
            ax = axes[row][col]
            ax.axis("off")
            if col < len(items):
                it, picture = items[col]
                ax.imshow(np.asarray(Image.open(picture).convert("RGB")))
                ax.set_title(f"{labels[arm]}\nit {it}" if col == 0 else f"it {it}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

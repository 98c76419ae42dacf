"""report.json and report.md of a claim: what was run, what was measured per seed, the checks
and the verdict, where it ran, and the pictures beside them."""
from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import torch

from common.reproduce.runner import REPO

VERDICT_WORDS = {
    "reproduced": "reproduced",
    "not_reproduced": "not reproduced",
    "inconclusive": "inconclusive",
}


def git_commit() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def machine(device: str) -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "torch": str(torch.__version__), "cpus": os.cpu_count(), "device": device,
            "threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_json(report: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    tmp.replace(path)


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}"


def _metric_cell(summary: dict) -> str:
    if summary["mean"] is None:
        return "-"
    seeds = ", ".join(_num(v) for v in summary["per_seed"])
    if len(summary["per_seed"]) == 1:
        return seeds
    return f"{_num(summary['mean'])} ± {_num(summary['std'], 2)} ({seeds})"


def markdown(report: dict, pictures: dict[str, str]) -> str:
    arms = report["arms"]
    metrics = sorted({m for arm in arms.values() for m in arm["metrics"]})
    lines = [f"# {report['claim']} at the {report['budget']} budget", "",
             f"**Paper** ({report['paper']}): {report['statement']}", "",
             f"**Compared:** {report['compares']}", "",
             f"**Verdict: {VERDICT_WORDS[report['verdict']]}** at the {report['budget']} budget "
             f"({len(report['seeds'])} seed{'s' if len(report['seeds']) != 1 else ''}: "
             f"{', '.join(map(str, report['seeds']))}).", ""]
    if report.get("reduced"):
        lines += [f"**Reduced against the paper:** {report['reduced']}", ""]
    lines += ["## Checks", "", "| metric | arm | condition | result | measured |", "|---|---|---|---|---|"]
    for c in report["checks"]:
        cond = (f"{c['better']} than {', '.join(c['than'])}" if c.get("better")
                else f"below {c['below']:g}" if "below" in c else f"above {c['above']:g}")
        lines.append(f"| {c['metric']} | {c['arm']} | {cond} | **{c['result']}** | "
                     f"{c['reason']} |")
    why = [c for c in report["checks"] if c.get("why")]
    if why:
        lines += [""] + [f"- {c['metric']} ({c['arm']}): {c['why']}" for c in why]
    lines += ["", "## Numbers (mean ± std over seeds, then per seed)", "",
              "| arm | iterations | train minutes per seed | " + " | ".join(metrics) + " |",
              "|---|---|---|" + "---|" * len(metrics)]
    for name, arm in arms.items():
        minutes = ", ".join(f"{s / 60:.1f}" for s in arm["train_seconds"])
        cells = [_metric_cell(arm["metrics"][m]) if m in arm["metrics"] else "-" for m in metrics]
        lines.append(f"| {arm['label']} (`{name}`) | {arm['iterations']} | {minutes} | "
                     + " | ".join(cells) + " |")
    lines += ["", "## Pictures", ""]
    for title, file in pictures.items():
        lines += [f"**{title}**", "", f"![{title}]({file})", ""]
    lines += ["## How it was measured", ""]
    for p in report["protocols"][:1]:
        proto = p.get("protocol", {})
        extractor = proto.get("extractor") or {}
        lines.append(f"- Protocol `{proto.get('name')}` with {proto.get('n')} generated images "
                     f"per score; extractor {extractor.get('name', '-')}, sha256 "
                     f"`{str(extractor.get('sha256', '-'))[:16]}...`"
                     + _accuracy(extractor.get("heldout_accuracy")) + ".")
    lines += [f"- Arms and their configs: see `report.json` (`arms.<name>.config`, "
              "`overrides`).",
              f"- Commit `{report['git']['commit']}`"
              f"{' (with uncommitted changes)' if report['git']['dirty'] else ''}; "
              f"{report['machine']['platform']}, {report['machine']['cpus']} CPUs, torch "
              f"{report['machine']['torch']}, device {report['machine']['device']}; "
              f"written {report['created']}.", ""]
    if report.get("notes"):
        lines += ["## Notes", "", report["notes"], ""]
    return "\n".join(lines)


def _accuracy(acc) -> str:
    if not isinstance(acc, dict) or "heldout" not in acc:
        return ""
    return f", held-out {acc.get('metric', 'accuracy')} {acc['heldout']:.4f} on {acc.get('n')} images"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def table(reports: list[dict], links: dict[str, str] | None = None) -> str:
    """One markdown row per report: the claim, the paper's statement, the checked numbers per arm
    (mean and per-seed values) and the verdict in words (docs/reproductions.md, README)."""
    lines = ["| claim | paper | budget, seeds | checked numbers (mean; per seed) | verdict |",
             "|---|---|---|---|---|"]
    for r in reports:
        numbers = []
        for c in r["checks"]:
            arms = [c["arm"], *c.get("than", [])]
            cells = []
            for arm in arms:
                s = r["arms"][arm]["metrics"].get(c["metric"])
                if s and s["mean"] is not None:
                    seeds = ", ".join(_num(v, 3) for v in s["per_seed"])
                    cells.append(f"{arm} {_num(s['mean'], 3)} ({seeds})")
            cond = (f"{c['better']} better" if c.get("better") else
                    f"< {c['below']:g}" if "below" in c else f"> {c['above']:g}")
            numbers.append(f"{c['metric']} [{cond}, {c['result']}]: " + "; ".join(cells))
        name = f"[{r['claim']}]({links[r['claim']]})" if links and r["claim"] in links \
            else r["claim"]
        lines.append(f"| {name} | {r['paper']}: {r['statement']} | {r['budget']}, "
                     f"{len(r['seeds'])} | " + "<br>".join(numbers) +
                     f" | **{VERDICT_WORDS[r['verdict']]}** at the {r['budget']} budget |")
    return "\n".join(lines)

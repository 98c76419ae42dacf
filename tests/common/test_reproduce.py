"""scripts/reproduce.py: every claim runs end to end at the smoke budget on the real data and
writes a complete report; the verdict rules; recipe errors; a re-run does not retrain."""
import json

import pytest

from common.errors import ConfigError
from common.reproduce import features, recipe, verdict
from common.reproduce.recipe import Check
from tests.conftest import load_script

CLAIMS = ["lrgan_mnist_one", "crvae_mnist_nll", "rpgan_k_vs_1", "acvae_attributes",
          "stackgan_stages", "lrgan_cifar10"]


@pytest.fixture(scope="session")
def tiny_features(shared_data, tmp_path_factory):
    """One tiny feature network per data set, shared by the smoke runs (as --features)."""
    made = {}

    def get(data: str):
        if data not in made:
            out = tmp_path_factory.mktemp(f"features_{data}")
            made[data] = features.ensure(data, None, "smoke", out, shared_data, "cpu",
                                         lambda m: None)
        return made[data]
    return get


# ---- the verdict rules ------------------------------------------------------------------------
def test_comparison_needs_every_seed_to_agree():
    check = Check("fd", "a", better="lower", than=("b",))
    assert verdict.judge(check, {"a": {"fd": [1, 2]}, "b": {"fd": [3, 4]}})["result"] == "holds"
    assert verdict.judge(check, {"a": {"fd": [5, 6]}, "b": {"fd": [3, 4]}})["result"] == "fails"
    assert verdict.judge(check, {"a": {"fd": [1, 4]}, "b": {"fd": [3, 5]}})["result"] == \
        "inconclusive"                       # the ranges over seeds overlap
    higher = Check("attr", "a", better="higher", than=("b", "c"))
    per = {"a": {"attr": [0.9]}, "b": {"attr": [0.8]}, "c": {"attr": [0.95]}}
    assert verdict.judge(higher, per)["result"] == "fails"      # one rival beats it


def test_thresholds_and_missing_numbers():
    below = Check("bg_flatness", "a", below=0.5)
    assert verdict.judge(below, {"a": {"bg_flatness": [0.1, 0.2]}})["result"] == "holds"
    assert verdict.judge(below, {"a": {"bg_flatness": [0.1, 0.7]}})["result"] == "inconclusive"
    assert verdict.judge(below, {"a": {"bg_flatness": [0.6, 0.7]}})["result"] == "fails"
    assert verdict.judge(below, {"a": {}})["result"] == "inconclusive"
    assert verdict.judge(below, {"a": {"bg_flatness": [float("nan")]}})["result"] == "inconclusive"
    assert verdict.verdict([{"result": "holds"}, {"result": "holds"}]) == "reproduced"
    assert verdict.verdict([{"result": "holds"}, {"result": "fails"}]) == "not_reproduced"
    assert verdict.verdict([{"result": "holds"}, {"result": "inconclusive"}]) == "inconclusive"
    s = verdict.summary([1.0, 3.0])
    assert (s["mean"], s["spread"], round(s["std"], 6)) == (2.0, 2.0, round(2 ** 0.5, 6))


# ---- recipes ----------------------------------------------------------------------------------
def test_the_six_claims_are_listed(repo, capsys):
    assert sorted(recipe.names()) == sorted(CLAIMS)
    assert load_script("reproduce").main(["--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == sorted(CLAIMS)
    assert all("smoke ~" in line and "paper " in line and "Paper (" in line for line in lines)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(COLOUR=1), "COLOUR: unknown key"),
    (lambda r: r.pop("CHECKS"), "CHECKS: missing"),
    (lambda r: r["CHECKS"][0].update(ARM="nobody"), "unknown arm 'nobody'"),
    (lambda r: r["CHECKS"][0].update(BELOW=1, BETTER="lower"), "give BETTER"),
    (lambda r: r["BUDGETS"]["cpu"].update(ITERS=0), "ITERS: expected a positive integer"),
    (lambda r: r["BUDGETS"].pop("paper"), "BUDGETS.paper: expected a mapping"),
    (lambda r: r["ARMS"]["lrgan"].update(OVERRIDES=["MODEL.NGF"]), "KEY=VALUE"),
    (lambda r: r.update(MEASURES=["decomposition"]), "neither 'protocol'"),
])
def test_a_bad_recipe_is_one_error_naming_the_key(repo, change, message):
    import yaml
    raw = yaml.safe_load((repo / "cfg" / "claims" / "lrgan_mnist_one.yml").read_text())
    change(raw)
    with pytest.raises(ConfigError, match=message):
        recipe.parse(raw, "x.yml")


def test_bad_command_lines_exit_2_and_write_nothing(repo, tmp_path, capsys):
    main = load_script("reproduce").main
    out = tmp_path / "claim"
    cases = [["no_such_claim"], ["lrgan_mnist_one", "--seeds", "0"],
             ["lrgan_mnist_one", "--budget", "smoke", "--data", str(tmp_path / "nowhere")],
             ["lrgan_mnist_one", "--budget", "smoke", "MODEL.NGF"],
             ["MODEL.NGF=8", "lrgan_mnist_one"],
             ["lrgan_mnist_one", "--budget", "smoke", "MODEL.NO_SUCH_KEY=1"]]
    for argv in cases:
        assert main([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
        assert not out.exists()
    # an override between options is still an override (options and KEY=VALUE in any order)
    assert main(["lrgan_mnist_one", "MODEL.NO_SUCH_KEY=1", "--budget", "smoke", "--out",
                 str(out)]) == 2
    assert "MODEL.NO_SUCH_KEY" in capsys.readouterr().err and not out.exists()


# ---- every claim end to end at the smoke budget -----------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("claim", CLAIMS)
def test_claim_runs_end_to_end_at_the_smoke_budget(repo, shared_data, tiny_features, tmp_path,
                                                  claim, capsys):
    r = recipe.load(claim)
    out = tmp_path / claim
    argv = [claim, "--budget", "smoke", "--seeds", "1", "--out", str(out), "--device", "cpu",
            "--data", str(shared_data)]
    if r.features:
        argv += ["--features", str(tiny_features(r.features))]
    assert load_script("reproduce").main(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert {"claim", "budget", "seeds", "arms", "verdict", "protocols", "git", "machine",
            "checks"} <= set(report)
    assert report["claim"] == claim and report["budget"] == "smoke" and report["seeds"] == [0]
    assert report["verdict"] in verdict.VERDICTS
    assert set(report["arms"]) == {a.name for a in r.arms}
    for name, arm in report["arms"].items():
        assert arm["iterations"] == r.budgets["smoke"].iters and arm["config"] and arm["overrides"]
        assert len(arm["train_seconds"]) == 1 and arm["train_seconds"][0] > 0
        assert arm["metrics"], name
        for summary in arm["metrics"].values():
            assert len(summary["per_seed"]) == 1 and {"mean", "std", "spread"} <= set(summary)
    checked = {c.metric for c in r.checks}
    measured = {m for arm in report["arms"].values() for m in arm["metrics"]}
    assert checked <= measured                          # every check has its number
    assert len(report["checks"]) == len(r.checks)
    assert report["protocols"] and all("protocol" in p for p in report["protocols"])
    md = (out / "report.md").read_text()
    assert report["verdict"].replace("_", " ") in md
    pictures = [line.split("](")[1][:-1] for line in md.splitlines() if line.startswith("![")]
    assert pictures and all((out / p).is_file() for p in pictures)
    assert {f"samples_{a.name}.png" for a in r.arms} <= set(pictures)
    if claim.startswith("lrgan_mnist"):
        assert "decomposition_lrgan.png" in pictures


@pytest.mark.slow
def test_a_rerun_scores_again_without_retraining(repo, shared_data, tiny_features, tmp_path,
                                                capsys):
    out = tmp_path / "claim"
    argv = ["crvae_mnist_nll", "--budget", "smoke", "--seeds", "1", "--out", str(out),
            "--device", "cpu", "--data", str(shared_data)]
    main = load_script("reproduce").main
    assert main(argv) == 0
    first = json.loads((out / "report.json").read_text())
    last = out / "runs" / "lstm" / "seed0" / "checkpoints" / "last.pt"
    stamp = last.stat().st_mtime_ns
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("not retrained") == 3 and last.stat().st_mtime_ns == stamp
    again = json.loads((out / "report.json").read_text())
    assert again["arms"]["lstm"]["metrics"] == first["arms"]["lstm"]["metrics"]
    assert again["arms"]["lstm"]["train_seconds"] == first["arms"]["lstm"]["train_seconds"]
    assert main(["--table", str(out)]) == 0                  # the docs' table of reports
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row.startswith("| [crvae_mnist_nll](") and "nll [lower better" in row

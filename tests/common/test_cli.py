"""The training command line, run as a user would (subprocesses of the toy model's script)."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from common import checkpoint

TOY = "tests/common/toy_train.py"


@pytest.fixture
def cfg(tmp_path, shared_data):
    """Toy model on 200 real CIFAR-10 PNGs with random flips (exercises per-item RNG)."""
    path = tmp_path / "toy.yml"
    path.write_text(f"""DATA:
  KIND: image_folder
  ROOT: {shared_data / 'cifar10' / 'kaggle_train_png_first200'}
  IMAGE_SIZE: 8
  OPTIONS: {{FLIP: true}}
TOY:
  EPOCHS: 2
RUN:
  WORKERS: 2
""")
    return path


def assert_same_state(a: dict, b: dict):
    for net in a["nets"]:
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), (net, key)
    for name, opt in a["optimizers"].items():
        for index, slots in opt["state"].items():
            for key, value in slots.items():
                assert torch.equal(torch.as_tensor(value),
                                   torch.as_tensor(b["optimizers"][name]["state"][index][key]))
    assert a["counters"] == b["counters"]


def test_killed_and_resumed_run_equals_uninterrupted_run(cli, repo, tmp_path, cfg):
    cli([repo / TOY, "--cfg", cfg, "--out", tmp_path / "straight", "--device", "cpu"], tmp_path)
    half = tmp_path / "halves"
    cli([repo / TOY, "--cfg", cfg, "--out", half, "--device", "cpu", "--max-iters", "9"], tmp_path)
    assert checkpoint.load(half / "checkpoints" / "last.pt")["counters"]["iteration"] == 9
    out = cli([repo / TOY, "--cfg", cfg, "--out", half, "--device", "cpu", "--resume", "auto"],
              tmp_path)
    assert "resumed at iteration 9" in out.stdout
    assert_same_state(checkpoint.load(tmp_path / "straight" / "checkpoints" / "last.pt"),
                      checkpoint.load(half / "checkpoints" / "last.pt"))


def test_sigterm_to_the_process_group_with_loader_workers_checkpoints_and_resumes_exactly(
        cli, repo, tmp_path, cfg):
    """A scheduler or `kill -- -PGID` signals the workers too: they must leave the stop to the
    main process, which saves a checkpoint from which the run continues bit for bit."""
    run = tmp_path / "stopped"
    args = [sys.executable, repo / TOY, "--cfg", cfg, "--out", run, "--device", "cpu",
            "TOY.EPOCHS=1000"]
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(list(map(str, args)), cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log, deadline = run / "log.txt", time.time() + 120
    while time.time() < deadline and not (log.exists() and "it 10/" in log.read_text()):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "DataLoader worker" not in out and "resume with --resume auto" in out
    stopped_at = checkpoint.load(run / "checkpoints" / "last.pt")["counters"]["iteration"]
    assert 10 <= stopped_at < 1000
    total = str(stopped_at + 4)
    cli([repo / TOY, "--cfg", cfg, "--out", run, "--device", "cpu", "--resume", "auto",
         "--max-iters", total, "TOY.EPOCHS=1000"], tmp_path)
    cli([repo / TOY, "--cfg", cfg, "--out", tmp_path / "straight", "--device", "cpu",
         "--max-iters", total, "TOY.EPOCHS=1000"], tmp_path)
    assert_same_state(checkpoint.load(tmp_path / "straight" / "checkpoints" / "last.pt"),
                      checkpoint.load(run / "checkpoints" / "last.pt"))


def test_resume_refuses_a_changed_config_unless_forced(cli, repo, tmp_path, cfg):
    run = tmp_path / "run"
    cli([repo / TOY, "--cfg", cfg, "--out", run, "--device", "cpu", "--max-iters", "2"], tmp_path)
    refused = cli([repo / TOY, "--cfg", cfg, "--out", run, "--device", "cpu", "--resume", "auto",
                   "TOY.LR=0.1"], tmp_path, check=False)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "TOY.LR: 0.0002 -> 0.1" in refused.stderr
    assert "--force-resume" in refused.stderr
    forced = cli([repo / TOY, "--cfg", cfg, "--out", run, "--device", "cpu", "--resume", "auto",
                  "--force-resume", "--max-iters", "3", "TOY.LR=0.1"], tmp_path)
    assert "optimizer G group 0: lr 0.0002 -> 0.1" in forced.stdout  # the new LR applies
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert [g["lr"] for o in state["optimizers"].values() for g in o["param_groups"]] == [0.1, 0.1]
    again = cli([repo / TOY, "--cfg", cfg, "--out", run, "--device", "cpu"], tmp_path, check=False)
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_default_run_directories_are_named_after_the_config(cli, repo, tmp_path):
    cfg = tmp_path / "exp.yml"
    cfg.write_text("TOY:\n  EPOCHS: 1\nDATA:\n  OPTIONS: {LENGTH: 32}\n")
    args = [repo / TOY, "--cfg", cfg, "--device", "cpu", "--max-iters", "1"]
    cli(args, tmp_path)
    cli(args, tmp_path)
    assert (tmp_path / "runs" / "exp" / "checkpoints" / "last.pt").is_file()
    assert (tmp_path / "runs" / "exp-2" / "checkpoints" / "last.pt").is_file()
    out = cli(args[:-2] + ["--max-iters", "2", "--resume", "auto"], tmp_path)
    assert "resumed at iteration 1" in out.stdout
    assert checkpoint.load(tmp_path / "runs" / "exp-2" / "checkpoints" / "last.pt")[
        "counters"]["iteration"] == 2


def test_dry_run_prints_the_config_without_touching_data(cli, repo, tmp_path):
    cfg = tmp_path / "exp.yml"
    cfg.write_text("DATA:\n  KIND: image_folder\n  ROOT: /does/not/exist\n")
    out = cli([repo / TOY, "--cfg", cfg, "--dry-run", "--device", "cuda", "TOY.NZ=3"], tmp_path)
    assert "NZ: 3" in out.stdout and "ROOT: /does/not/exist" in out.stdout
    assert "DEVICE: cuda" in out.stdout and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text, extra, message", [
    (None, [], "config file not found"),
    ("TOY:\n  NZZ: 3\n", [], "unknown key TOY.NZZ (did you mean TOY.NZ?)"),
    ("TOY:\n  NZ: three\n", [], "TOY.NZ must be int"),
    ("", ["TOY.LR"], "is not of the form KEY.SUB=VALUE"),
    ("", ["RUN.PRECISION=fp64"], "RUN.PRECISION is 'fp64'"),
    ("DATA:\n  OPTIONS: {SHAPE: [circle]}\n", [], "unknown key DATA.OPTIONS.SHAPE"),
    ("TOY:\n  BATCH_SIZE: 0\n", [], "TOY.BATCH_SIZE must be positive"),
])
def test_bad_configs_exit_nonzero_with_one_line(cli, repo, tmp_path, text, extra, message):
    cfg = tmp_path / "exp.yml"
    if text is not None:
        cfg.write_text(text)
    proc = cli([repo / TOY, "--cfg", cfg, "--device", "cpu", *extra], tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_data_exits_with_one_line(cli, repo, tmp_path):
    cfg = tmp_path / "exp.yml"
    cfg.write_text(f"DATA:\n  KIND: image_folder\n  ROOT: {tmp_path / 'nothing'}\n")
    proc = cli([repo / TOY, "--cfg", cfg, "--device", "cpu"], tmp_path, check=False)
    assert proc.returncode == 2 and "image folder not found" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_two_process_torchrun_run_finishes_and_writes_one_checkpoint(cli, repo, tmp_path):
    cfg = tmp_path / "exp.yml"
    cfg.write_text("TOY:\n  EPOCHS: 1\n")
    proc = cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", repo / TOY,
                "--cfg", cfg, "--out", tmp_path / "ddp", "--device", "cpu"], tmp_path, timeout=300)
    assert "over 2 process(es)" in proc.stdout
    assert proc.stdout.count("it 16/16") == 1  # only rank 0 prints
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == ["last.pt"]
    state = checkpoint.load(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert state["counters"]["iteration"] == 16 and len(state["rng"]) == 2
    # the two ranks drew different noise but ended with identical weights (gradients averaged)
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])


def test_sample_script_on_a_checkpoint(cli, repo, tmp_path):
    cfg = tmp_path / "exp.yml"
    cfg.write_text("TOY:\n  EPOCHS: 1\n")
    cli([repo / TOY, "--cfg", cfg, "--out", tmp_path / "run", "--device", "cpu"], tmp_path)
    out = cli([repo / "scripts" / "sample.py", tmp_path / "run", tmp_path / "s.png", "--n", "6",
               "--nrow", "3", "--seed", "2"], tmp_path)
    assert "wrote" in out.stdout and (tmp_path / "s.png").is_file()
    missing = cli([repo / "scripts" / "sample.py", tmp_path / "nope"], tmp_path, check=False)
    assert missing.returncode == 2 and "no such checkpoint" in missing.stderr

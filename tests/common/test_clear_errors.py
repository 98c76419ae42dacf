"""Bad input to the shared commands is one `error:` line and exit code 2, never a traceback and
never a silent wrong run (issue: hardening). In-process runs of the toy model's command line and
of scripts/sample.py / evaluate.py."""

import os
import signal

import pytest
import torch
from torch.utils.data import get_worker_info

from common import checkpoint, cli
from common.data.registry import KINDS, register
from common.data.scenes import LayeredScenes
from tests.conftest import load_script, one_error_line

TOY = "tests.common.toy_model"
TINY = ["DATA.OPTIONS.LENGTH=32", "TOY.EPOCHS=1"]


@pytest.fixture
def toy_cfg(tmp_path):
    (tmp_path / "toy.yml").write_text("TOY:\n  EPOCHS: 1\n")
    return tmp_path / "toy.yml"


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    (folder / "toy.yml").write_text("TOY:\n  EPOCHS: 1\n")
    assert cli.train_main(TOY, ["--cfg", str(folder / "toy.yml"), "--out", str(folder / "run"),
                                "--device", "cpu", *TINY]) == 0
    return folder / "run"


@pytest.mark.parametrize("args, message", [
    (["--device", "gpu"], "RUN.DEVICE is 'gpu'; expected auto, cpu, cuda or cuda:N"),
    (["--max-iters", "-1"], "RUN.MAX_ITERS is -1; expected an integer >= 0"),
    (["RUN.WORKERS=-1"], "RUN.WORKERS is -1; expected an integer >= 0"),
    (["RUN.LOG_EVERY=0"], "RUN.LOG_EVERY is 0; expected an integer >= 1"),
    (["RUN.CKPT_EVERY=-5"], "RUN.CKPT_EVERY is -5"),
    (["RUN.THREADS=two"], "RUN.THREADS must be int"),
    ([f"RUN.SEED={2**64}"], f"RUN.SEED is {2**64}; expected an integer from -2**63 to 2**64 - 1"),
    ([f"RUN.SEED={-2**63 - 1}"], "expected an integer from -2**63 to 2**64 - 1"),
    (["DATA.OPTIONS.SEED=-1"], "DATA.OPTIONS.SEED is -1; expected an integer from 0 to 2**63"),
    (["TOY.LR=1e400"], "TOY.LR must be a finite number, got '1e400'"),
    (["TOY.LR=.nan"], "TOY.LR must be a finite number, got nan"),
])
def test_impossible_run_settings_are_refused_before_anything_is_written(tmp_path, toy_cfg,
                                                                        capsys, args, message):
    out = tmp_path / "run"
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(out), *TINY, *args]) == 2
    assert message in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("override, message", [
    ("TOY.LR=-0.5", "error: TOY.LR: Invalid learning rate: -0.5 (refused by the optimizer)"),
])
def test_a_setting_the_optimizer_refuses_names_its_key(tmp_path, toy_cfg, capsys, override,
                                                      message):
    out = tmp_path / "run"
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(out), "--device", "cpu",
                                *TINY, override]) == 2
    assert one_error_line(capsys) == message
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--max-iters", "abc"], "error: --max-iters: invalid int value: 'abc' (see "),
    (["--no-such-option"], "error: unrecognized arguments: --no-such-option (see "),
])
def test_a_malformed_command_line_is_one_line(toy_cfg, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        cli.train_main(TOY, ["--cfg", str(toy_cfg), *argv])
    assert stop.value.code == 2
    assert one_error_line(capsys).startswith(message)


def test_a_config_that_is_no_text_is_one_line(tmp_path, capsys):
    (tmp_path / "binary.yml").write_bytes(bytes(range(128, 256)))
    assert cli.train_main(TOY, ["--cfg", str(tmp_path / "binary.yml"), "--dry-run"]) == 2
    assert one_error_line(capsys).endswith("binary.yml: not a UTF-8 text file (YAML expected)")


def test_cuda_without_a_gpu_is_one_line(tmp_path, toy_cfg, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(tmp_path / "run"),
                                "--device", "cuda", *TINY]) == 2
    assert "no CUDA device is available" in one_error_line(capsys)


@pytest.mark.parametrize("out", ["file/run", "/proc/no_such_folder/run"])
def test_an_unwritable_run_directory_fails_at_once(tmp_path, toy_cfg, capsys, out):
    (tmp_path / "file").write_text("not a folder")
    target = out if out.startswith("/") else str(tmp_path / out)
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", target, *TINY]) == 2
    assert "the run directory cannot be" in one_error_line(capsys)


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"PK\x03\x04 truncated", "not a readable ganrepro checkpoint"),
    (b"some text", "not a PyTorch file (neither a zip archive nor a pickle)"),
])
def test_a_damaged_last_checkpoint_is_one_line_on_resume(tmp_path, toy_cfg, capsys, content,
                                                         message):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.pt").write_bytes(content)
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(tmp_path / "run"),
                                "--resume", "auto", *TINY]) == 2
    assert message in one_error_line(capsys)


def test_a_checkpoint_without_its_config_is_one_line(repo, toy_run, tmp_path, capsys):
    state = checkpoint.load(toy_run / "checkpoints" / "last.pt")
    del state["config"]
    checkpoint.save(state, tmp_path / "noconfig.pt")
    assert load_script("sample").main([str(tmp_path / "noconfig.pt"),
                                             str(tmp_path / "x.png")]) == 2
    assert "without its 'config' entry" in one_error_line(capsys)


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n: expected a positive count, got 0"),
    (["--n", "-5"], "--n: expected a positive count, got -5"),
    (["--nrow", "-1"], "--nrow: expected a positive count, got -1"),
    (["--device", "gpu"], "--device: 'gpu' is not a device"),
])
def test_sample_refuses_impossible_counts_and_devices(repo, toy_run, tmp_path, capsys, args,
                                                      message):
    target = tmp_path / "s.png"
    assert load_script("sample").main([str(toy_run), str(target), *args]) == 2
    assert message in one_error_line(capsys)
    assert not target.exists()


@pytest.mark.parametrize("target, message", [("file/s.png", "cannot be written"),
                                             (".", "is a folder; expected an output file name")])
def test_sample_into_an_unwritable_place_is_one_line(repo, toy_run, tmp_path, capsys, target,
                                                     message):
    (tmp_path / "file").write_text("not a folder")
    assert load_script("sample").main([str(toy_run), str(tmp_path / target), "--n", "4"]) == 2
    assert message in one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # no temporary file left


def test_sample_on_device_auto_takes_what_there_is(toy_run, tmp_path, capsys):
    assert load_script("sample").main([str(toy_run), str(tmp_path / "s.png"), "--n", "4",
                                       "--device", "auto"]) == 0
    assert (tmp_path / "s.png").is_file()


def test_evaluate_refuses_an_unknown_device(repo, toy_run, capsys):
    assert load_script("evaluate").main(["--run", str(toy_run), "--device", "gpu",
                                               "--protocol", "fid10k", "--out", "-"]) == 2
    assert "--device: 'gpu' is not a device" in one_error_line(capsys)


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "--batch-size: expected a positive count, got 0"),
    (["--workers", "-1"], "--workers: expected a count >= 0, got -1"),
    (["--reference-n", "-2"], "--reference-n: expected a count >= 0, got -2"),
    (["--out", "."], ": is a folder; expected an output file name"),
    (["--out", "file/m.jsonl"], "file/m.jsonl: the output file cannot be written here"),
    (["--seed", str(2**64)], "--seed: expected an integer from -2**63 to 2**64 - 1"),
    (["--protocol", "nope", "--out", "sub/m.jsonl"], "unknown protocol 'nope'"),
])
def test_evaluate_refuses_bad_counts_and_outputs_before_scoring(toy_run, tmp_path, capsys,
                                                                 monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("not a folder")
    assert load_script("evaluate").main(["--run", str(toy_run), "--protocol", "fid10k",
                                         *args]) == 2
    assert message in one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # no output file, no folder


@pytest.mark.parametrize("seed", [-1, 2**64 - 1, -2**63])
def test_every_seed_torch_accepts_trains(tmp_path, toy_cfg, seed):
    """Runs trained with a negative seed before the range was checked still run and resume."""
    out = tmp_path / "run"
    argv = ["--cfg", str(toy_cfg), "--out", str(out), "--device", "cpu", *TINY, f"RUN.SEED={seed}"]
    assert cli.train_main(TOY, [*argv, "--max-iters", "2"]) == 0
    assert cli.train_main(TOY, [*argv, "--resume", "auto"]) == 0


# ---- the model-specific scripts ----------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed: expected an integer from 0 to 2**32 - 1 (numpy's RandomState), "
                       "got -1"),
    (["--channels", "0"], "--channels: expected a positive count, got 0"),
    (["--size", "0", "--stride", "0"], "--stride: expected a positive count, got 0"),
    (["--size", "7"], "--size 7: expected --size minus --stride (2) even and >= 0"),
    (["--k", "100000000000"], "--k 100000000000, --size 8: a bank this large does not fit"),
])
def test_rpgan_make_filters_refuses_impossible_banks(tmp_path, capsys, args, message):
    assert load_script("rpgan_make_filters").main([str(tmp_path / "f.npz"), "--k", "2",
                                                   *args]) == 2
    assert message in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_rpgan_make_filters_into_a_folder_is_one_line(tmp_path, capsys):
    assert load_script("rpgan_make_filters").main([str(tmp_path), "--k", "2"]) == 2
    assert "is a folder" in one_error_line(capsys)


@pytest.mark.parametrize("script, args", [("rpgan_fixbn", []), ("rpgan_interp", ["x.png", "1,2"])])
def test_rpgan_tools_refuse_an_unknown_device(toy_run, capsys, script, args):
    assert load_script(script).main([str(toy_run), *args, "--device", "gpu"]) == 2
    assert "--device: 'gpu' is not a device" in one_error_line(capsys)


@pytest.mark.parametrize("args, message", [
    ([], "is a 'tests.common.toy_model' checkpoint; the likelihood is defined for acvae's"),
    (["--samples", "5,x"], "--samples: expected positive counts separated by commas, got '5,x'"),
    (["--samples", "0"], "--samples: expected positive counts"),
    (["--batch", "-1"], "--batch: expected a count >= 0, got -1"),
])
def test_acvae_eval_nll_refuses_other_models_and_bad_counts(toy_run, capsys, args, message):
    assert load_script("acvae_eval_nll").main([str(toy_run), "--last", *args]) == 2
    assert message in one_error_line(capsys)


# ---- class 3: nothing is lost ------------------------------------------------------------------
def test_a_failed_force_resume_leaves_the_run_directory_as_it_was(tmp_path, toy_cfg, capsys):
    run = tmp_path / "run"
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(run), "--device", "cpu",
                                "--max-iters", "2", *TINY]) == 0
    before = {p.name: p.read_bytes() for p in [run / "config.yml", run / "env.json",
                                               run / "log.txt", run / "checkpoints" / "last.pt"]}
    capsys.readouterr()
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(run), "--device", "cpu",
                                "--resume", "auto", "--force-resume", *TINY,
                                "TOY.WIDTH=16"]) == 2
    assert "do not fit the model built from the config" in one_error_line(capsys)
    after = {name: (run / name if name != "last.pt" else run / "checkpoints" / name).read_bytes()
             for name in before}
    assert after == before


def test_bad_data_writes_no_run_directory(tmp_path, toy_cfg, capsys):
    out = tmp_path / "run"
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(out), "--device", "cpu",
                                "DATA.KIND=image_folder", f"DATA.ROOT={tmp_path / 'nowhere'}"]) == 2
    one_error_line(capsys)
    assert not out.exists()


# ---- class 1: no traceback, wherever the error happens -----------------------------------------
@pytest.mark.parametrize("workers", [0, 1])
def test_a_truncated_image_is_one_line_also_from_a_loader_worker(tmp_path, toy_cfg, capsys,
                                                                   shared_data, workers):
    """The truncated file sorts last, after the 64 the main process reads for reals.png, so
    the loader (a worker when RUN.WORKERS >= 1) is the first to read it."""
    source = sorted((shared_data / "cifar10" / "kaggle_train_png_first200").glob("*.png"))[:70]
    folder = tmp_path / "images"
    folder.mkdir()
    for p in source[:69]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "zz_truncated.png").write_bytes(source[69].read_bytes()[:200])
    out = tmp_path / "run"
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(out), "--device", "cpu",
                                "DATA.KIND=image_folder", f"DATA.ROOT={folder}",
                                "TOY.BATCH_SIZE=70", f"RUN.WORKERS={workers}"]) == 2
    line = one_error_line(capsys)
    assert "zz_truncated.png: corrupt or truncated image" in line and "Traceback" not in line


# ---- a loader worker that dies on its own (the kernel's out-of-memory killer) ------------------
class ScenesThatKillTheirWorker(LayeredScenes):
    """Layered scenes whose loader worker kills itself (SIGKILL, as the OOM killer does) at its
    first item; the main process reads them unharmed (reals.png)."""

    def __getitem__(self, index):
        if get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(index)


@register("scenes_killing_their_worker", KINDS["layered_scenes"].options, needs_root=False)
def _build_killing_scenes(spec):
    o = spec.options
    return ScenesThatKillTheirWorker(o["LENGTH"], spec.image_size, spec.channels, o["SEED"],
                                     o["OBJECTS"], o["SCALE"], o["SHAPES"], o["BACKGROUND"])


def test_a_worker_killed_while_the_batch_is_awaited_ends_with_a_checkpoint(tmp_path, toy_cfg,
                                                                           capsys):
    out = tmp_path / "run"
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(out), "--device", "cpu",
                                *TINY, "DATA.KIND=scenes_killing_their_worker",
                                "RUN.WORKERS=1"]) == 3
    line = one_error_line(capsys)
    assert "DataLoader worker (pid" in line and "at iteration 0" in line, line
    assert "last.pt written" in line and "--resume auto" in line and "RUN.WORKERS" in line
    state = checkpoint.load(out / "checkpoints" / "last.pt")
    assert state["counters"]["iteration"] == 0


def test_a_worker_lost_in_the_middle_of_an_iteration_keeps_the_last_checkpoint(
        tmp_path, toy_cfg, capsys, monkeypatch):
    """PyTorch's SIGCHLD handler can raise in the middle of a step: then nothing new is saved
    (the networks may be half updated) and the line names the checkpoint that is kept."""
    from tests.common import toy_model
    step = toy_model.ToyTrainer.g_step

    def g_step(self, batch):
        if self.progress.iteration == 5:
            raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Killed. ")
        return step(self, batch)
    monkeypatch.setattr(toy_model.ToyTrainer, "g_step", g_step)
    out = tmp_path / "run"
    assert cli.train_main(TOY, ["--cfg", str(toy_cfg), "--out", str(out), "--device", "cpu",
                                "TOY.BATCH_SIZE=4", "RUN.CKPT_EVERY=4"]) == 3
    line = one_error_line(capsys)
    assert line == ("error: DataLoader worker (pid 4242) is killed by signal: Killed during "
                    f"iteration 6; last good checkpoint: {out / 'checkpoints' / 'last.pt'} "
                    "(iteration 4); resume with --resume auto (out of memory? fewer RUN.WORKERS "
                    "or a smaller batch need less)")
    assert checkpoint.load(out / "checkpoints" / "last.pt")["counters"]["iteration"] == 4

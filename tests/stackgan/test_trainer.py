"""StackGAN v1 trainer: one step per phase per stage, Stage-I loading, schedules, config."""
import pytest
import torch

from common import checkpoint, models
from common.data import EpochLoader
from common.errors import CheckpointError, ConfigError
from stackgan.v1 import model as sg
from tests.common.data.textdata import tiny_birds

TINY = ["GAN.GF_DIM=4", "GAN.DF_DIM=2", "GAN.CONDITION_DIM=6", "GAN.R_NUM=1", "Z_DIM=10",
        "TEXT.DIMENSION=16", "TRAIN.BATCH_SIZE=4", "RUN.WORKERS=0"]


@pytest.fixture(scope="module")
def birds(shared_data, tmp_path_factory):
    cub = shared_data / "cub"
    root = tiny_birds(tmp_path_factory.mktemp("data"), cub)
    return root, cub / "CUB_200_2011"


def make_cfg(birds, stage=1, extra=()):
    root, cub_dir = birds
    stage_keys = [f"STAGE={stage}", f"IMSIZE={64 if stage == 1 else 256}"]
    return models.load_config(sg, None, TINY + stage_keys + [f"DATA_DIR={root}",
                                                           f"DATASET.CUB_DIR={cub_dir}",
                                                           *extra])


def first_batch(trainer):
    return next(EpochLoader(trainer.dataset(), trainer.batch_size, seed=0).epoch(0))


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before, module):
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v)}


def run_both_phases(trainer, batch):
    g, d = trainer.nets["G"], trainer.nets["D"]
    d_phase, g_phase = trainer.phases()
    g_before, d_before = snapshot(g), snapshot(d)
    trainer.optimizers["D"].zero_grad()
    loss_d = d_phase.fn(batch)
    loss_d.backward()
    assert torch.isfinite(loss_d) and all(p.grad is None for p in g.parameters())
    trainer.optimizers["D"].step()
    assert changed(d_before, d) == set(d_before) and not changed(g_before, g)
    trainer.optimizers["G"].zero_grad()
    loss_g = g_phase.fn(batch)["G"]
    trainable = [p for p in g.parameters() if p.requires_grad]
    loss_g.backward(inputs=trainable)             # what the loop does with a {name: loss} dict
    assert torch.isfinite(loss_g)
    trainer.optimizers["G"].step()
    d_after = snapshot(d)
    assert not changed(d_after, d)
    return g_before, changed(g_before, g)


@pytest.mark.parametrize("variant", [[], ["GAN.CA_TYPE=lrelu_logsigma", "GAN.D_TEXT=embedding",
                                          "TRAIN.WRONG=dataset", "TRAIN.NUM_EMBEDDING=2"]])
def test_stage1_one_step_per_phase(birds, variant):
    torch.manual_seed(0)
    trainer = sg.build(make_cfg(birds, 1, variant), torch.device("cpu"))
    batch = first_batch(trainer)
    assert ("wrong_images" in batch) == ("TRAIN.WRONG=dataset" in variant)
    g_before, moved = run_both_phases(trainer, batch)
    assert moved == set(g_before)
    pictures = trainer.snapshot_images()
    assert pictures["fakes"][0].shape == (4, 3, 64, 64) and "lr_fakes" not in pictures


def test_stage2_one_step_trains_only_stage2(birds, tmp_path):
    torch.manual_seed(0)
    stage1 = sg.build(make_cfg(birds, 1), torch.device("cpu"))
    torch.save(stage1.nets["G"].state_dict(), tmp_path / "netG_epoch_0.pth")   # original format
    trainer = sg.build(make_cfg(birds, 2, [f"STAGE1_G={tmp_path / 'netG_epoch_0.pth'}"]),
                       torch.device("cpu"))
    trainer.start_fresh()
    for key, value in stage1.nets["G"].state_dict().items():
        assert torch.equal(trainer.nets["G"].STAGE1_G.state_dict()[key], value)
    g_before, moved = run_both_phases(trainer, first_batch(trainer))
    frozen = {k for k in g_before if k.startswith("STAGE1_G.")}
    assert frozen and moved == set(g_before) - frozen
    pictures = trainer.snapshot_images()
    assert pictures["fakes"][0].shape == (4, 3, 256, 256)
    assert pictures["lr_fakes"][0].shape == (4, 3, 64, 64)


def test_stage1_loss_form_switch_default_sigmoid_bce(birds):
    """TRAIN.LOSS honoured: with D's logits pinned at -30 both forms give the G loss 30, the
    original's (sigmoid + BCELoss, the default) with every G gradient p (1 - p) / 1e-12 as big."""
    assert make_cfg(birds).TRAIN.LOSS == "sigmoid_bce"
    grads = {}
    for form in ("sigmoid_bce", "logits"):
        torch.manual_seed(0)
        trainer = sg.build(make_cfg(birds, 1, [f"TRAIN.LOSS={form}", "TRAIN.COEFF.KL=0.0"]),
                           torch.device("cpu"))
        heads = trainer.nets["D"].get_cond_logits
        heads.register_forward_hook(lambda module, args, out: out - out.detach() - 30.0)
        batch = first_batch(trainer)
        assert abs(trainer.d_step(batch).item() - 30.0) < 1e-4   # real 30 + (0 + 0) / 2
        loss = trainer.g_step(batch)["G"]
        assert abs(loss.item() - 30.0) < 1e-4
        params = [p for p in trainer.nets["G"].parameters() if p.requires_grad]
        grads[form] = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])
    p = torch.sigmoid(torch.tensor(-30.0)).item()
    damped, plain = grads["sigmoid_bce"], grads["logits"]
    assert plain.abs().max() > 0
    assert (damped - p * (1 - p) / 1e-12 * plain).abs().max() < 1e-5 * damped.abs().max()


def test_conditional_head_sees_real_wrong_fake_in_the_original_order(birds):
    torch.manual_seed(0)
    trainer = sg.build(make_cfg(birds), torch.device("cpu"))
    net_d, codes, seen = trainer.nets["D"], [], []
    net_d.register_forward_hook(lambda module, args, out: codes.append(out))
    net_d.get_cond_logits.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    trainer.d_step(first_batch(trainer))
    real, fake = codes
    assert len(seen) == 3 and torch.equal(seen[0], real) and torch.equal(seen[2], fake)
    assert torch.equal(seen[1], real[:-1])        # wrong: the real pictures, shifted captions


def test_stage2_refuses_to_start_without_stage1(birds):
    trainer = sg.build(make_cfg(birds, 2), torch.device("cpu"))   # build itself needs no file
    with pytest.raises(ConfigError, match="Stage-II training needs the trained Stage-I "
                                          "generator: set STAGE1_G") as err:
        trainer.start_fresh()
    assert err.value.key == "STAGE1_G"


def test_stage1_weights_from_checkpoints(birds, tmp_path):
    stage1 = sg.build(make_cfg(birds, 1), torch.device("cpu"))
    ckpt = checkpoint.save(checkpoint.capture(stage1, {"iteration": 3}),
                           tmp_path / "run" / "checkpoints" / "last.pt")
    stage2 = sg.build(make_cfg(birds, 2, [f"STAGE1_G={tmp_path / 'run'}"]), torch.device("cpu"))
    stage2.start_fresh()                                      # a ganrepro run directory
    expected = stage1.nets["G"].state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in stage2.nets["G"].STAGE1_G.state_dict()
               .items())
    # a Stage-II file given as STAGE1_G: its STAGE1_G.* part ("module." prefixes stripped)
    wrapped = {f"module.{k}": v for k, v in stage2.nets["G"].state_dict().items()}
    torch.save(wrapped, tmp_path / "stage2.pth")
    other = sg.build(make_cfg(birds, 2, [f"STAGE1_G={tmp_path / 'stage2.pth'}"]),
                     torch.device("cpu"))
    other.start_fresh()
    assert all(torch.equal(v, expected[k]) for k, v in other.nets["G"].STAGE1_G.state_dict()
               .items())
    wide = sg.build(make_cfg(birds, 2, [f"STAGE1_G={ckpt}", "GAN.GF_DIM=8"]), torch.device("cpu"))
    with pytest.raises(CheckpointError, match="STAGE1_G does not fit"):
        wide.start_fresh()


def test_lr_halving_schedule(birds):
    trainer = sg.build(make_cfg(birds, 1, ["TRAIN.LR_DECAY_EPOCH=20",
                                           "TRAIN.DISCRIMINATOR_LR=0.0004"]), torch.device("cpu"))
    for epoch, factor in ((0, 1), (19, 1), (20, 0.5), (39, 0.5), (40, 0.25), (65, 0.125), (0, 1)):
        trainer.set_epoch(epoch)
        assert trainer.optimizers["G"].param_groups[0]["lr"] == pytest.approx(2e-4 * factor)
        assert trainer.optimizers["D"].param_groups[0]["lr"] == pytest.approx(4e-4 * factor)


def test_epoch_snapshots(birds):
    trainer = sg.build(make_cfg(birds, 1, ["TRAIN.SNAPSHOT_INTERVAL=10"]), torch.device("cpu"))
    trainer.progress.iters_per_epoch = 7
    due = [it for it in range(1, 200) if (setattr(trainer.progress, "iteration", it)
                                          or trainer.snapshot_due())]
    assert due == [7, 77, 147]                     # after epochs 0, 10 and 20


def test_original_yml_loads_and_maps_loop_keys():
    original = {  # StackGAN-Pytorch code/cfg/coco_s1.yml, key for key
        "CONFIG_NAME": "stageI", "DATASET_NAME": "coco", "EMBEDDING_TYPE": "cnn-rnn",
        "GPU_ID": "0,1", "Z_DIM": 100, "DATA_DIR": "../data/coco", "IMSIZE": 64, "WORKERS": 4,
        "STAGE": 1,
        "TRAIN": {"FLAG": True, "BATCH_SIZE": 128, "MAX_EPOCH": 120, "LR_DECAY_EPOCH": 20,
                  "SNAPSHOT_INTERVAL": 10, "DISCRIMINATOR_LR": 0.0002, "GENERATOR_LR": 0.0002,
                  "COEFF": {"KL": 2.0}},
        "GAN": {"CONDITION_DIM": 128, "DF_DIM": 96, "GF_DIM": 192},
        "TEXT": {"DIMENSION": 1024}}
    cfg = models.load_config(sg, original, source="coco_s1.yml")
    assert cfg.RUN.WORKERS == 4 and cfg.GAN.R_NUM == 4
    trainer = sg.build(cfg, torch.device("cpu"))
    assert trainer.batch_size == 128 and trainer.epochs == 120
    assert trainer.parameter_count("G") == 20_020_832
    assert models.load_config(sg, original, ["RUN.WORKERS=1"]).RUN.WORKERS == 1


@pytest.mark.parametrize("override, key", [
    (["IMSIZE=256"], "IMSIZE"), (["STAGE=2", "IMSIZE=256", "GAN.GF_DIM=6"], "GAN.GF_DIM"),
    (["TRAIN.BATCH_SIZE=1"], "TRAIN.BATCH_SIZE"), (["GAN.CA_TYPE=glu"], "GAN.CA_TYPE"),
    (["TRAIN.LR_DECAY_EPOCH=0"], "TRAIN.LR_DECAY_EPOCH"), (["TRAIN.LOSS=hinge"], "TRAIN.LOSS"),
    (["DATASET.CACHE_MB=-1"], "DATASET.CACHE_MB"),      # the data kind's check, original key
    (["TRAIN.NUM_EMBEDDING=0"], "TRAIN.NUM_EMBEDDING"), (["TRAIN.COEFF.KL=-1"], "TRAIN.COEFF.KL")])
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        models.load_config(sg, None, override)
    assert err.value.key == key and key in str(err.value)


def test_eval_samples_walk_the_test_captions(birds):
    trainer = sg.build(make_cfg(birds, 1), torch.device("cpu"))
    batches = list(sg.eval_samples(trainer, n=30, seed=3, batch_size=8))
    images = torch.cat([b["image"] for b in batches])
    assert images.shape == (30, 3, 64, 64) and images.abs().max() <= 1
    from common.data.text_files import load_split
    test = load_split(birds[0], "test", "cnn-rnn").embeddings.reshape(-1, 16)   # 24 captions
    text = torch.cat([b["embedding"] for b in batches])
    assert torch.equal(text[:24], torch.from_numpy(test)) and torch.equal(text[24:], text[:6])
    again = torch.cat([b["image"] for b in sg.eval_samples(trainer, n=30, seed=3, batch_size=8)])
    assert torch.equal(images, again) and trainer.nets["G"].training

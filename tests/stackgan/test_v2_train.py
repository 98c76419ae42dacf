"""StackGAN++ training at tiny width: one step per phase, EMA, write-back, loss form, sampling."""
import pytest
import torch
from torch.utils.data import Dataset

from common import models, train
from common.seeds import mix
from common.trainer import write_back_ema
from stackgan.v2 import sampling

TINY = ["GAN.GF_DIM=4", "GAN.DF_DIM=2", "GAN.Z_DIM=6", "GAN.EMBEDDING_DIM=4", "GAN.R_NUM=1",
        "TEXT.DIMENSION=12", "TRAIN.BATCH_SIZE=2", "TRAIN.VIS_COUNT=4", "RUN.WORKERS=0",
        "RUN.DEVICE=cpu",
        "RUN.PROGRESS=lines", "RUN.LOG_EVERY=1"]


class PairsInMemory(Dataset):
    """Random pictures at 64/128/256 with caption embeddings: the shape of a v2 text item."""

    def __init__(self, n=4, dim=12, conditional=True):
        g = torch.Generator().manual_seed(1)
        self.items = []
        for i in range(n):
            images = [torch.rand(3, s, s, generator=g) * 2 - 1 for s in (64, 128, 256)]
            item = {"images": images, "image": images[-1]}
            if conditional:
                item["wrong_images"] = [im.flip(-1) for im in images]
                item["embedding"] = torch.randn(dim, generator=g)
            self.items.append(item)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def pick_embedding(self, i):  # as common.data.text.TextImageDataset
        return self.items[i]["embedding"]


def make_trainer(conditional=True, extra=()):
    module = models.module("stackgan_v2")
    overrides = TINY + [f"GAN.B_CONDITION={conditional}", "TRAIN.COEFF.UNCOND_LOSS=1.0",
                        "TRAIN.COEFF.COLOR_LOSS=50.0", *extra]
    cfg = models.load_config(module, None, overrides)
    torch.manual_seed(0)
    trainer = module.build(cfg, torch.device("cpu"))
    trainer._train_set = PairsInMemory(conditional=conditional)
    return trainer


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def trained(conditional, folder, iters):
    """A tiny trainer after `iters` iterations of the common loop, and its initial weights."""
    trainer = make_trainer(conditional, [f"RUN.MAX_ITERS={iters}", "RUN.SAMPLE_EVERY=0",
                                         "TRAIN.EMA_DECAY=0.5"])
    before = {name: snapshot(net) for name, net in trainer.nets.items()}
    train.run(trainer, folder / "run")
    return trainer, before, folder


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    return trained(True, tmp_path_factory.mktemp("cond"), 2)


@pytest.mark.parametrize("conditional", [True, False])
def test_training_updates_every_network(conditional, conditional_run, tmp_path):
    trainer, before, folder = conditional_run if conditional else trained(False, tmp_path, 1)
    for name in ("G", "D0", "D1", "D2", "G_ema"):
        assert changed(before[name], trainer.nets[name]), name
    stats = (folder / "run" / "stats.jsonl").read_text()
    for name in ("loss/D/D0", "loss/D/D2", "loss/G/G", "G/adv2", "G/like_cov1", "D1/fake"):
        assert f'"{name}"' in stats, name
    assert ('"G/kl"' in stats) == conditional and ('"D0/wrong"' in stats) == conditional
    it = trainer.progress.iteration
    assert sorted(p.name for p in (folder / "run" / "samples").iterdir()) == \
        [f"fake128_{it:07d}.png", f"fake256_{it:07d}.png", f"fake64_{it:07d}.png", "reals.png"]


def test_d_phase_leaves_the_generator_alone_and_g_phase_the_discriminators():
    trainer = make_trainer(True)
    batch = next(iter(torch.utils.data.DataLoader(trainer._train_set, batch_size=2)))
    losses = trainer.d_step(batch)
    assert set(losses) == {"D0", "D1", "D2"}
    for name, loss in losses.items():
        loss.backward(retain_graph=True)
    assert all(p.grad is None for p in trainer.nets["G"].parameters())
    assert all(p.grad is not None for p in trainer.nets["D2"].parameters())
    for d in ("D0", "D1", "D2"):
        trainer.nets[d].zero_grad(set_to_none=True)
    g_loss = trainer.g_step(batch)["G"]
    g_loss.backward(inputs=list(trainer.nets["G"].parameters()))
    # mu is not detached in the G step: the CA net gets gradient (also through D's input)
    assert trainer.nets["G"].ca_net.fc.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in trainer.nets["D0"].parameters())


def test_ema_differs_from_live_and_is_what_sampling_uses(conditional_run):
    trainer = conditional_run[0]
    g, ema = trainer.nets["G"], trainer.nets["G_ema"]
    assert trainer.sampling_net() is ema
    assert any(not torch.equal(a, b) for a, b in zip(g.parameters(), ema.parameters()))
    emb = torch.randn(4, 12)
    with_ema = sampling.conditioned_batches(trainer, 4, 7, 4, emb.numpy())
    images, _, _ = next(with_ema)
    live, _, _ = next(sampling.conditioned_batches(trainer, 4, 7, 4, emb.numpy(), ema=False))
    assert not torch.allclose(images[-1], live[-1])
    # the same seed and the EMA network, run by hand, give the same pictures
    z = sampling.seeded_noise(4, 6, mix(7, 0, 1))
    by_hand = sampling.run_generator(trainer, z, emb, mix(7, 0, 2))
    assert torch.equal(by_hand[-1], images[-1])
    assert [im.shape[-1] for im in images] == [64, 128, 256]


@pytest.mark.parametrize("write_back", [True, False])
def test_ema_write_back_switch(write_back):
    trainer = make_trainer(False, ["TRAIN.SNAPSHOT_INTERVAL=2",
                                   f"TRAIN.EMA_WRITE_BACK={write_back}"])
    with torch.no_grad():  # make the average differ from the live weights
        for p in trainer.nets["G_ema"].parameters():
            p.add_(0.5)
    ema = snapshot(trainer.nets["G_ema"])
    trainer.progress.iteration = 1      # not a snapshot iteration: nothing is written back
    write_back_ema(trainer)             # (what the loop does before an iteration's phases)
    assert not torch.equal(next(trainer.nets["G"].parameters()), ema[0])
    trainer.progress.iteration = 2      # right after the snapshot of iteration 2
    write_back_ema(trainer)
    same = all(torch.equal(a, b) for a, b in zip(trainer.nets["G"].parameters(), ema))
    assert same == write_back


@pytest.mark.parametrize("write_back", [True, False])
def test_after_a_snapshot_the_live_g_takes_the_average(write_back, tmp_path):
    """Through the loop: two iterations end the snapshot interval 2; the next D phase starts
    from the average (on, the default) or from the live weights (off). BN buffers and G's Adam
    moments are left as they were, as the original's load_params left them."""
    extra = ["TREE.BRANCH_NUM=1", "TRAIN.SNAPSHOT_INTERVAL=2", "TRAIN.EMA_DECAY=0.5",
             "RUN.MAX_ITERS=2", "RUN.SAMPLE_EVERY=0"]
    if not write_back:
        extra.append("TRAIN.EMA_WRITE_BACK=False")
    trainer = make_trainer(False, extra)
    assert trainer.cfg.TRAIN.EMA_WRITE_BACK == write_back
    train.run(trainer, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "ckpt_0000002.pt").exists()
    g, ema = trainer.nets["G"], trainer.nets["G_ema"]
    live, average = snapshot(g), snapshot(ema)
    assert any(not torch.equal(a, b) for a, b in zip(live, average))
    buffers = [b.clone() for b in g.buffers()]
    moments = [s["exp_avg"].clone() for s in trainer.optimizers["G"].state.values()]
    write_back_ema(trainer)                   # what the loop does first in iteration 3
    now = snapshot(g)
    assert all(torch.equal(a, b) for a, b in zip(now, average if write_back else live))
    assert all(torch.equal(a, b) for a, b in zip(buffers, g.buffers()))
    assert all(torch.equal(a, s["exp_avg"])
               for a, s in zip(moments, trainer.optimizers["G"].state.values()))
    trainer.progress.iteration = 3            # not a snapshot iteration: nothing happens
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    write_back_ema(trainer)
    assert not any(torch.equal(a, b) for a, b in zip(g.parameters(), average))


def test_loss_form_switch_default_sigmoid_bce():
    """TRAIN.LOSS honoured: D logits pinned at -30, the same G loss in both forms, every G
    gradient p (1 - p) / 1e-12 as big in the original's (default) form."""
    grads = {}
    for form in ("sigmoid_bce", "logits"):
        trainer = make_trainer(False, [f"TRAIN.LOSS={form}", "TRAIN.COEFF.COLOR_LOSS=0.0"])
        for i in range(3):
            trainer.nets[f"D{i}"].register_forward_hook(
                lambda module, args, out: [o - o.detach() - 30.0 for o in out])
        batch = next(iter(torch.utils.data.DataLoader(trainer._train_set, batch_size=2)))
        trainer.d_step(batch)
        loss = trainer.g_step(batch)["G"]
        assert abs(loss.item() - 90.0) < 1e-4           # three branches, 30 each
        grads[form] = torch.cat([g.flatten() for g in torch.autograd.grad(
            loss, list(trainer.nets["G"].parameters()))])
    assert make_trainer(False).cfg.TRAIN.LOSS == "sigmoid_bce"
    p = torch.sigmoid(torch.tensor(-30.0)).item()
    damped, plain = grads["sigmoid_bce"], grads["logits"]
    assert plain.abs().max() > 0
    assert (damped - p * (1 - p) / 1e-12 * plain).abs().max() < 1e-5 * damped.abs().max()


def test_config_maps_the_original_loop_keys():
    module = models.module("stackgan_v2")
    cfg = models.load_config(module, None, ["TRAIN.SNAPSHOT_INTERVAL=300", "WORKERS=3",
                                            "GPU_ID='3'", "RUN.CKPT_EVERY=50"])
    assert (cfg.RUN.SNAPSHOT_EVERY, cfg.RUN.SAMPLE_EVERY, cfg.RUN.CKPT_EVERY) == (300, 300, 50)
    assert cfg.RUN.WORKERS == 3 and cfg.RUN.DEVICE == "auto"
    trainer = module.build(models.load_config(module, None, TINY), torch.device("cpu"))
    assert trainer.batch_size == 2 and trainer.epochs == 600


def test_resume_with_write_back_matches_an_uninterrupted_run(tmp_path):
    from common import checkpoint
    extra = ["TREE.BRANCH_NUM=1", "TRAIN.SNAPSHOT_INTERVAL=2", "TRAIN.EMA_WRITE_BACK=True",
             "TRAIN.EMA_DECAY=0.5", "RUN.SAMPLE_EVERY=0"]
    whole = make_trainer(True, extra + ["RUN.MAX_ITERS=4"])
    train.run(whole, tmp_path / "whole")
    first = make_trainer(True, extra + ["RUN.MAX_ITERS=3"])
    train.run(first, tmp_path / "part")
    state = checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")
    rest = make_trainer(True, extra + ["RUN.MAX_ITERS=4"])
    train.run(rest, tmp_path / "part", state)
    for name in ("G", "G_ema", "D0"):
        for a, b in zip(whole.nets[name].state_dict().values(),
                        rest.nets[name].state_dict().values()):
            assert torch.equal(a, b), name


@pytest.mark.parametrize("overrides, key", [
    (["TREE.BASE_SIZE=32"], "TREE.BASE_SIZE"), (["TREE.BRANCH_NUM=6"], "TREE.BRANCH_NUM"),
    (["GAN.GF_DIM=6"], "GAN.GF_DIM"), (["TRAIN.COEFF.UNCOND_LOSS=-1.0"], "TRAIN.COEFF.UNCOND_LOSS"),
    (["EMBEDDING_TYPE=word2vec"], "EMBEDDING_TYPE"),
    (["TRAIN.SNAPSHOT_INTERVAL=0", "TRAIN.EMA_WRITE_BACK=True"], "TRAIN.EMA_WRITE_BACK"),
    (["TRAIN.LOSS=hinge"], "TRAIN.LOSS"), (["GAN.NETWORK_TYPE=simple"], "GAN.NETWORK_TYPE"),
    (["DATASET.CACHE_MB=-0.5"], "DATASET.CACHE_MB"),    # the data kind's check, original key
    (["TRAIN.MAX_EPOCH=0"], "TRAIN.MAX_EPOCH"),
])
def test_bad_configs_name_the_key(overrides, key):
    from common.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        models.load_config(models.module("stackgan_v2"), None, overrides)
    assert err.value.key == key and "command line" in str(err.value)


@pytest.mark.parametrize("override", ["TRAIN.SNAPSHOT_INTERVAL=0", "RUN.CUDA_GRAPHS=True"])
def test_the_default_write_back_names_itself_in_conflicts(override):
    from common.errors import ConfigError
    with pytest.raises(ConfigError, match="on by default") as err:
        models.load_config(models.module("stackgan_v2"), None, [override])
    assert err.value.key == "TRAIN.EMA_WRITE_BACK" and "EMA_WRITE_BACK False" in str(err.value)
    models.load_config(models.module("stackgan_v2"), None, [override, "TRAIN.EMA_WRITE_BACK=False"])


def test_evaluation_needs_net_g_and_bad_data_is_named(tmp_path):
    from types import SimpleNamespace
    from common.errors import ConfigError, DataError
    module = models.module("stackgan_v2")
    cfg = models.load_config(module, None, TINY + ["TRAIN.FLAG=False"])
    ctx = SimpleNamespace(args=SimpleNamespace(out=None), device=torch.device("cpu"),
                          run_dir=tmp_path)
    with pytest.raises(ConfigError, match="TRAIN.NET_G"):
        module.main_without_training(cfg, ctx)
    cfg = models.load_config(module, None, TINY + [f"DATA_DIR={tmp_path / 'nowhere'}"])
    with pytest.raises(DataError, match="nowhere"):
        module.build(cfg, torch.device("cpu")).dataset()
    (tmp_path / "G.pth").write_bytes(b"not a checkpoint")
    from common.errors import CheckpointError
    cfg = models.load_config(module, None, TINY + [f"TRAIN.NET_G={tmp_path / 'G.pth'}"])
    with pytest.raises(CheckpointError, match="G.pth"):
        module.build(cfg, torch.device("cpu")).start_fresh()


def test_original_checkpoint_files_load(tmp_path):
    """netG_<iteration>.pth / netD<i>.pth as the original saved them (DataParallel keys)."""
    from stackgan.v2.weights import generator_weights
    source = make_trainer(True)
    with torch.no_grad():
        for p in source.nets["G"].parameters():
            p.add_(1.0)
    model_dir = tmp_path / "Model"
    model_dir.mkdir()
    torch.save({"module." + k: v for k, v in source.nets["G"].state_dict().items()},
               model_dir / "netG_1234.pth")
    for i in range(3):
        torch.save({"module." + k: v for k, v in source.nets[f"D{i}"].state_dict().items()},
                   model_dir / f"netD{i}.pth")
    assert generator_weights(model_dir / "netG_1234.pth")[1] == 1234
    target = make_trainer(True, [f"TRAIN.NET_G={model_dir / 'netG_1234.pth'}",
                                 f"TRAIN.NET_D={model_dir / 'netD'}"])
    target.start_fresh()
    for name, other in (("G", "G"), ("G_ema", "G"), ("D2", "D2")):
        for a, b in zip(target.nets[name].state_dict().values(),
                        source.nets[other].state_dict().values()):
            assert torch.equal(a, b), name


ORIGINAL_EVAL_YML = """
CONFIG_NAME: '3stages_color'
DATASET_NAME: 'church_outdoor'
DATA_DIR: '../data/lsun'
GPU_ID: '3'
WORKERS: 4
TREE:
    BRANCH_NUM: 3
TEST:
    B_EXAMPLE: False
    SAMPLE_NUM: 100
TRAIN:
    FLAG: False
    NET_G: '../models/dog_3stages_color/netG_600000.pth'
    BATCH_SIZE: 24
GAN:
    EMBEDDING_DIM: 128
    DF_DIM: 64
    GF_DIM: 64
    Z_DIM: 100
    R_NUM: 2
    B_CONDITION: False
"""


def test_an_original_style_yml_and_the_shipped_configs_load(repo, tmp_path):
    module = models.module("stackgan_v2")
    path = tmp_path / "eval_dog.yml"
    path.write_text(ORIGINAL_EVAL_YML)
    cfg = models.load_config(module, path)
    assert cfg.TRAIN.FLAG is False and cfg.TEST.SAMPLE_NUM == 100 and cfg.RUN.WORKERS == 4
    expected = {"birds": (True, 1.0, 0.0, 600), "flowers": (True, 1.0, 0.0, 600),
                "coco": (True, 1.0, 0.0, 120), "bedroom": (False, 0.0, 50.0, 5),
                "church": (False, 0.0, 50.0, 50), "dog": (False, 0.0, 50.0, 100),
                "cat": (False, 0.0, 50.0, 800)}
    for name, (cond, lambda_u, alpha, epochs) in expected.items():
        cfg = models.load_config(module, repo / "cfg" / f"{name}_3stages.yml")
        assert (cfg.GAN.B_CONDITION, cfg.TRAIN.COEFF.UNCOND_LOSS, cfg.TRAIN.COEFF.COLOR_LOSS,
                cfg.TRAIN.MAX_EPOCH) == (cond, lambda_u, alpha, epochs), name
        assert (cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.SNAPSHOT_INTERVAL, cfg.GAN.GF_DIM,
                cfg.GAN.DF_DIM, cfg.TREE.BRANCH_NUM, cfg.TRAIN.EMA_WRITE_BACK) == \
            (24, 2000, 64, 64, 3, True), name
        assert cfg.TRAIN.LOSS == "sigmoid_bce", name

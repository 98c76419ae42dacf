"""Stage 2: the fade-in schedule, the wrappers, and growing from (only) a matching stage-1 model."""
import pytest
import torch
import torch.nn.functional as F

from acvae import growing
from acvae.decoders import to_rgb
from common import checkpoint
from common.errors import CheckpointError, ConfigError
from tests.acvae.helpers import trainer


def test_fade_alpha_over_epochs():
    # the original: alpha = min((epoch - 1) / (nEpochs / 2), max_alpha), 1-based epochs
    assert [growing.fade_alpha(e, 150) for e in (0, 1, 37, 74, 75, 149)] == \
        [0.0, 1 / 75, 37 / 75, 74 / 75, 1.0, 1.0]
    assert growing.fade_alpha(100, 150, max_alpha=0.6) == 0.6


def test_set_epoch_sets_every_wrapper_as_a_function_of_the_epoch():
    tr = trainer("acvaegan", 2, extra=["TRAIN.EPOCHS=10"])
    fades = [n for n in tr.nets.values() if isinstance(n, growing.Fade)]
    assert len(fades) == 3
    for epoch in (4, 1, 3, 4):
        tr.set_epoch(epoch)
        assert all(f.alpha == epoch / 5 for f in fades)
    tr.set_epoch(9)
    assert all(f.alpha == 1.0 for f in fades)


def test_to_rgb_fade_mixes_old_and_new_branch():
    torch.manual_seed(0)
    fade = growing.ToRGBFade(to_rgb(4), growing.decoder_conv(4, 1e-5, 0.1)).eval()
    h = torch.randn(2, 8, 8, 8)
    old = F.interpolate(fade.old(h), scale_factor=2, mode="nearest")   # 1x1 conv commutes
    new = fade(h, full=True)
    fade.alpha = 0.0
    assert torch.allclose(fade(h), old, atol=1e-6)
    fade.alpha = 0.25
    assert torch.allclose(fade(h), 0.75 * old + 0.25 * new, atol=1e-6)
    assert new.shape == (2, 3, 16, 16)


def save_stage1(tr, path):
    counters = {"iteration": 0, "epoch": 0, "nimg": 0}
    return checkpoint.save(checkpoint.capture(tr, counters), path)


def test_stage2_grows_from_a_stage1_checkpoint(tmp_path):
    s1 = trainer("acvaegan", seed=1)
    path = save_stage1(s1, tmp_path / "s1.pt")
    s2 = trainer("acvaegan", 2, extra=[f"MODEL.STAGE1_CKPT={path}"], seed=2)
    s2.grow_from_stage1()
    for name in ("encoder", "var_decoder", "decoder", "prior", "features", "recon", "disc",
                 "attention"):
        assert all(torch.equal(a, b) for a, b in zip(s1.nets[name].state_dict().values(),
                                                     s2.nets[name].state_dict().values())), name
    for name in growing.WRAPPED:
        for branch in (s2.nets[name].old, s2.nets[name].stage1):
            assert all(torch.equal(a, b) for a, b in zip(s1.nets[name].state_dict().values(),
                                                         branch.state_dict().values())), name
        assert branch is not s2.nets[name].old        # independent copies


@pytest.mark.parametrize("override,message", [
    ("MODEL.VARIANT=crvaegan", "VARIANT 'acvaegan' (this config: 'crvaegan')"),
    ("MODEL.BASE_CHANNELS=6", "BASE_CHANNELS 4 (this config: 6)"),
])
def test_stage2_refuses_a_mismatched_stage1_checkpoint(tmp_path, override, message):
    path = save_stage1(trainer("acvaegan"), tmp_path / "s1.pt")
    s2 = trainer("acvaegan", 2, extra=[f"MODEL.STAGE1_CKPT={path}", override])
    with pytest.raises(CheckpointError, match="does not match this stage-2 config") as err:
        s2.grow_from_stage1()
    assert message in str(err.value)


def test_stage2_refuses_a_stage2_checkpoint_and_needs_one(tmp_path):
    s2 = trainer("cvaegan", 2)
    path = save_stage1(s2, tmp_path / "s2.pt")
    grown = trainer("cvaegan", 2, extra=[f"MODEL.STAGE1_CKPT={path}"])
    with pytest.raises(CheckpointError, match="is a stage-2 model"):
        grown.grow_from_stage1()
    with pytest.raises(ConfigError, match="MODEL.STAGE1_CKPT"):
        trainer("cvaegan", 2).grow_from_stage1()
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        trainer("cvaegan", 2, extra=[f"MODEL.STAGE1_CKPT={tmp_path}/nope.pt"]).grow_from_stage1()


def test_stage2_for_cvae_is_refused_at_config_time():
    with pytest.raises(ConfigError, match="MODEL.STAGE 2 exists for"):
        trainer("cvae", 2)


def test_a_stage2_checkpoint_samples_without_its_stage1_file(tmp_path):
    s1_path = save_stage1(trainer("crvaegan"), tmp_path / "s1.pt")
    s2 = trainer("crvaegan", 2, extra=[f"MODEL.STAGE1_CKPT={s1_path}"])
    s2.grow_from_stage1()
    s2_path = save_stage1(s2, tmp_path / "s2.pt")
    s1_path.unlink()
    again = checkpoint.trainer_from_state(checkpoint.load(s2_path))
    images = again.generate(2, seed=0)
    assert images.shape == (2, 3, 128, 128)
    assert torch.equal(images, s2.generate(2, seed=0))

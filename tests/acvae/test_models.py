"""Shapes of every variant at 64 and 128 px, and parameter counts from the spec's layer tables."""
import pytest
import torch

from tests.acvae.helpers import trainer


def conv(i, o, k):
    return i * o * k * k + o


def lin(i, o):
    return i * o + o


def bn(c):
    return 2 * c


def lstm(i, h, layers=2):
    return sum(4 * h * ((i if n == 0 else h) + h) + 8 * h for n in range(layers))


C, Z, A = 32, 64, 40
TRUNK = (conv(C, C, 5) + bn(C) + conv(2 * C, 2 * C, 3) + bn(2 * C) + conv(4 * C, 4 * C, 3)
         + bn(4 * C) + conv(8 * C, 8 * C, 3) + bn(8 * C) + conv(8 * C, 8 * C, 3) + bn(8 * C)
         + conv(16 * C, 8 * C, 3) + bn(8 * C))
STACK = (conv(8 * C, 8 * C, 4) + bn(8 * C) + conv(8 * C, 8 * C, 3) + bn(8 * C)
         + conv(8 * C, 4 * C, 4) + bn(4 * C) + conv(4 * C, 2 * C, 4) + bn(2 * C)
         + conv(2 * C, 2 * C, 4) + bn(2 * C) + conv(2 * C, 2 * C, 3) + bn(2 * C))
FC_HEAD = lin(A, 1024) + lin(1024 + 4096, 1024) + 2 * lin(1024, 1024)
FC_DECODER = lin(A, 1024) + lin(2048, 4096) + STACK
MLP_PRIOR = lin(A, 1024) + 2 * lin(1024, 1024)
D_TRUNK = conv(C, 2 * C, 5) + conv(2 * C, 4 * C, 5) + conv(4 * C, 8 * C, 3)    # after conv 1
HEAD = lin(512, 500) + lin(612, 1)            # batch discrimination T, then the output
FLAT_D = D_TRUNK + lin(4096, 512) + lin(A, 2048) + lin(2560, 512) + HEAD
EXPECTED = {
    "cvae": {"encoder": TRUNK - conv(C, C, 5) + conv(6, C, 5) + FC_HEAD,
             "decoder": FC_DECODER + conv(2 * C, 3, 3), "prior": MLP_PRIOR},
    "cgan": {"G": FC_DECODER + conv(2 * C, 3, 3), "D": conv(3, C, 5) + FLAT_D},
    "cvaegan": {"enc_rgb": conv(6, C, 1) + bn(C), "encoder": TRUNK + FC_HEAD,
                "decoder": FC_DECODER, "to_rgb": conv(2 * C, 3, 1), "prior": MLP_PRIOR,
                "from_rgb": conv(3, C, 1), "disc": conv(C, C, 5) + FLAT_D},
}
RECURRENT = {
    "enc_rgb": conv(6, C, 1) + bn(C),
    "encoder": TRUNK + lin(A, 128) + conv(320, Z, 3) + Z * 16 + lstm(640, 512) + bn(512)
    + lin(512, 128),
    "var_decoder": lin(A, 128) + lstm(256, 512) + lin(512, 128),
    "decoder": Z * 16 + conv(Z, 8 * C, 3) + bn(8 * C) + STACK,
    "to_rgb": conv(2 * C, 3, 1), "from_rgb": conv(3, C, 1),
    "features": conv(C, C, 5) + D_TRUNK + lin(A, 128),
    "recon": conv(320, 2 * C, 3) + bn(2 * C) + conv(2 * C, Z, 1) + bn(Z) + lin(1024, 1024) + 1024,
    "disc": lin(5120, 512) + HEAD,
}
EXPECTED["crvaegan"] = {**RECURRENT, "prior": MLP_PRIOR}
EXPECTED["acvaegan"] = {**RECURRENT, "prior": lstm(A, 128) + 2 * lin(128, 128), "attention": 320}
GROWN = {"enc_rgb": 2 * (conv(6, C, 1) + bn(C)) + conv(C, C // 2, 3) + bn(C // 2)
         + conv(C // 2, C, 3) + bn(C),
         "to_rgb": 2 * conv(2 * C, 3, 1) + conv(2 * C, C, 3) + bn(C) + conv(C, 2 * C, 3) + bn(2 * C),
         "from_rgb": 2 * conv(3, C, 1) + conv(C, C // 2, 3) + conv(C // 2, C, 3)}
M_TRUNK = lambda k: (conv(1, C, 5) + bn(C) + conv(2 * C, 2 * C, 3) + bn(2 * C)  # noqa: E731
                     + conv(2 * C, 2 * C, 3) + bn(2 * C) + conv(4 * C, 4 * C, 3) + bn(4 * C)
                     + conv(4 * C, 4 * C, k) + bn(4 * C) + conv(8 * C, 8 * C, 3) + bn(8 * C))
M_STACK = (conv(8 * C, 8 * C, 4) + bn(8 * C) + conv(8 * C, 8 * C, 3) + bn(8 * C)
           + conv(8 * C, 4 * C, 4) + bn(4 * C) + conv(4 * C, 4 * C, 3) + bn(4 * C)
           + conv(4 * C, 2 * C, 4) + bn(2 * C) + conv(2 * C, 2 * C, 3) + bn(2 * C) + conv(2 * C, 1, 3))
EXPECTED_MNIST = {
    "mnist_baseline": {"encoder": M_TRUNK(5) + 2 * lin(4096, 1024),
                       "decoder": lin(1024, 4096) + M_STACK},
    "mnist_conv": {"encoder": M_TRUNK(5) + 2 * conv(8 * C, Z, 3),
                   "decoder": conv(Z, 8 * C, 3) + bn(8 * C) + M_STACK},
    "mnist_lstm": {"encoder": M_TRUNK(3) + lin(4096, 1024) + 1024 + lstm(512, 512) + lin(512, 128),
                   "decoder": 1024 + conv(Z, 8 * C, 3) + bn(8 * C) + M_STACK + lstm(128, 512)
                   + lin(512, 128)},
}


def full_size(variant, stage=1):
    from common import models
    mod = models.module("acvae")
    extra = (["DATA.KIND=mnist", "DATA.IMAGE_SIZE=28", "DATA.CHANNELS=1"]
             if variant.startswith("mnist") else [f"DATA.IMAGE_SIZE={64 * stage}"])
    cfg = models.load_config(mod, None, [f"MODEL.VARIANT={variant}", f"MODEL.STAGE={stage}",
                                         *extra, "VIS.N=1"])
    return mod.build(cfg, torch.device("cpu"))


@pytest.mark.parametrize("variant", ["cvae", "cgan", "cvaegan", "crvaegan", "acvaegan"])
def test_parameter_counts_celeba(variant):
    tr = full_size(variant)
    counts = {k: tr.parameter_count(k) for k in tr.nets if k != "vis"}
    assert counts == EXPECTED[variant]


@pytest.mark.parametrize("variant", ["cvaegan", "acvaegan"])
def test_parameter_counts_stage2(variant):
    tr = full_size(variant, 2)
    counts = {k: tr.parameter_count(k) for k in tr.nets if k != "vis"}
    assert counts == {**EXPECTED[variant], **GROWN}


@pytest.mark.parametrize("variant", sorted(EXPECTED_MNIST))
def test_parameter_counts_mnist(variant):
    tr = full_size(variant)
    assert {k: tr.parameter_count(k) for k in ("encoder", "decoder")} == EXPECTED_MNIST[variant]


@pytest.mark.parametrize("variant,stage", [("cvae", 1), ("cgan", 1), ("cvaegan", 1),
                                           ("crvaegan", 1), ("acvaegan", 1), ("cvaegan", 2),
                                           ("crvaegan", 2), ("acvaegan", 2)])
def test_shapes(variant, stage):
    tr = trainer(variant, stage)
    size = 64 * stage
    attrs = torch.randint(0, 2, (3, 40)).float() * 2 - 1
    x = torch.rand(3, 3, size, size) * 2 - 1
    with torch.no_grad(), tr.evaluating():
        samples = tr.sample_images(attrs, None)
        recon = tr.reconstruct(x, attrs)
    assert samples.shape == (3, 3, size, size) and samples.abs().max() <= 1
    if variant != "cgan":
        assert recon.shape == (3, 3, size, size)
    if variant in ("crvaegan", "acvaegan"):
        mu, logvar = tr.nets["encoder"](tr.rgb_in(x), tr.steps(attrs))
        assert mu.shape == logvar.shape == (3, 16, 4, 4)
        assert tr.nets["features"](tr.nets["from_rgb"](x), attrs).shape == (3, 16 + 32, 4, 4)


@pytest.mark.parametrize("variant", sorted(EXPECTED_MNIST))
def test_mnist_shapes(variant):
    tr = trainer(variant)
    x = (torch.rand(5, 1, 28, 28) > 0.5).float()
    with torch.no_grad(), tr.evaluating():
        mu, logvar = tr.encode(x)
        probs = tr.nets["decoder"](mu)
    assert mu.shape == logvar.shape == ((5, 256) if variant == "mnist_baseline" else (5, 16, 4, 4))
    assert probs.shape == (5, 1, 28, 28) and 0 <= probs.min() and probs.max() <= 1


def test_every_config_loads_with_the_readme_values(repo):
    from common import models
    mod = models.module("acvae")
    cfgs = {p.stem: models.load_config(mod, p) for p in sorted((repo / "cfg").glob("*.yml"))
            if p.stem.startswith(("acvae_", "crvae_"))}
    assert len(cfgs) == 11
    assert cfgs["acvae_celeba64_acvaegan"].TRAIN.LR == 1e-3
    assert cfgs["acvae_celeba64_cgan"].TRAIN.LR == 2e-4
    assert cfgs["acvae_celeba128_cvaegan"].TRAIN.BATCH_SIZE == 64
    assert cfgs["crvae_mnist_lstm"].TRAIN.LR == 3e-3
    assert all(c.FIX.GATE_WHOLE_D is False for c in cfgs.values())

"""StackGAN v1 networks: the CA net, Stage-I (64 px) and Stage-II (256 px) G and D, their init.

The layout and the sub-module names follow the PyTorch COCO code (`ca_net.fc`, `upsample1`,
`encode_img`, `get_cond_logits.outlogits`, `STAGE1_G`, ...), so its released `.pth` state dicts
load unchanged. Differences, each a switch with the faithful choice as default:
- the discriminator heads return logits; the original's final sigmoid is applied in the loss
  (TRAIN.LOSS: sigmoid + BCELoss by default, or BCE with logits; common/losses.py);
- `ca_type="lrelu_logsigma"` is the TensorFlow CA (LeakyReLU, log sigma, truncated-normal noise);
- `text_dim > 0` gives D the TensorFlow conditional head: it compresses the raw text embedding
  with its own Linear + LeakyReLU and joins it with a 1x1 (not 3x3) convolution.
"""
from __future__ import annotations

import torch
from torch import nn

from stackgan.conditioning import reparameterize
from stackgan.layers import conv3x3

CA_TYPES = ("relu_logvar", "lrelu_logsigma")


def truncated_normal_like(t: torch.Tensor) -> torch.Tensor:
    """Standard normal noise shaped like t, truncated at two standard deviations (TF CA)."""
    return nn.init.trunc_normal_(torch.empty_like(t), 0.0, 1.0, -2.0, 2.0)


def up_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """Nearest x2 upsampling, 3x3 conv, BN, ReLU."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(in_ch, out_ch),
                         nn.BatchNorm2d(out_ch), nn.ReLU(True))


def down_block(in_ch: int, out_ch: int, bn: bool = True) -> list[nn.Module]:
    """4x4 stride-2 conv (no bias), [BN], LeakyReLU(0.2)."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False)]
    if bn:
        layers.append(nn.BatchNorm2d(out_ch))
    return layers + [nn.LeakyReLU(0.2, inplace=True)]


class ResBlock(nn.Module):
    """conv3, BN, ReLU, conv3, BN; add the input; ReLU (v1 ends with an activation)."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(conv3x3(channels, channels), nn.BatchNorm2d(channels),
                                   nn.ReLU(True), conv3x3(channels, channels),
                                   nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.block(x) + x)


class CANet(nn.Module):
    """Conditioning augmentation: text embedding -> (c, mu, logvar), c ~ N(mu, exp(logvar)).

    relu_logvar (PyTorch code): Linear + ReLU, halves read as (mu, logvar); so mu >= 0 and
    sigma >= 1. lrelu_logsigma (TF code): Linear + LeakyReLU(0.2), second half is log sigma
    (returned as logvar = 2 log sigma, which makes the KL formula the same), noise from a
    normal truncated at two standard deviations. Noise is drawn on every call, also in eval.
    """

    def __init__(self, text_dim: int, condition_dim: int, ca_type: str = "relu_logvar"):
        super().__init__()
        if ca_type not in CA_TYPES:
            raise ValueError(f"ca_type {ca_type!r} unknown; expected one of {CA_TYPES}")
        self.c_dim, self.ca_type = condition_dim, ca_type
        self.fc = nn.Linear(text_dim, condition_dim * 2, bias=True)

    def encode(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.fc(text)
        if self.ca_type == "relu_logvar":
            x = torch.relu(x)
            return x[:, :self.c_dim], x[:, self.c_dim:]
        x = nn.functional.leaky_relu(x, 0.2)
        return x[:, :self.c_dim], 2 * x[:, self.c_dim:]

    def forward(self, text: torch.Tensor):
        mu, logvar = self.encode(text)
        noise = torch.randn_like if self.ca_type == "relu_logvar" else truncated_normal_like
        return reparameterize(mu, logvar, noise), mu, logvar


class DLogits(nn.Module):
    """A discriminator head on the 8ndf x 4 x 4 image code: one logit per image.

    Conditional: the condition (C,) is tiled to 4x4 and put after the image code, then conv,
    BN, LeakyReLU and a 4x4 stride-4 conv (with bias). With `text_dim` the condition is the raw
    text embedding, compressed first (TF head; join conv 1x1). Unconditional: the last conv only.
    """

    def __init__(self, ndf: int, cond_dim: int, condition: bool = True, text_dim: int = 0):
        super().__init__()
        self.cond_dim, self.condition = cond_dim, condition
        self.text_fc = None
        if condition:
            if text_dim:
                self.text_fc = nn.Sequential(nn.Linear(text_dim, cond_dim),
                                             nn.LeakyReLU(0.2, inplace=True))
            kernel = 1 if text_dim else 3
            self.outlogits = nn.Sequential(
                nn.Conv2d(ndf * 8 + cond_dim, ndf * 8, kernel, 1, kernel // 2, bias=False),
                nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ndf * 8, 1, kernel_size=4, stride=4))
        else:
            self.outlogits = nn.Sequential(nn.Conv2d(ndf * 8, 1, kernel_size=4, stride=4))

    def forward(self, code: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.condition:
            if self.text_fc is not None:
                cond = self.text_fc(cond)
            tiled = cond.view(-1, self.cond_dim, 1, 1).expand(-1, -1, 4, 4)
            code = torch.cat([code, tiled], 1)
        return self.outlogits(code).view(-1)


class Stage1G(nn.Module):
    """(text, z) -> (None, 64x64 image, mu, logvar); input [z, c], width 8g at 4x4."""

    def __init__(self, z_dim: int = 100, condition_dim: int = 128, text_dim: int = 1024,
                 gf_dim: int = 128, ca_type: str = "relu_logvar"):
        super().__init__()
        ngf = self.gf_dim = gf_dim * 8
        self.ca_net = CANet(text_dim, condition_dim, ca_type)
        self.fc = nn.Sequential(nn.Linear(z_dim + condition_dim, ngf * 16, bias=False),
                                nn.BatchNorm1d(ngf * 16), nn.ReLU(True))
        self.upsample1 = up_block(ngf, ngf // 2)
        self.upsample2 = up_block(ngf // 2, ngf // 4)
        self.upsample3 = up_block(ngf // 4, ngf // 8)
        self.upsample4 = up_block(ngf // 8, ngf // 16)
        self.img = nn.Sequential(conv3x3(ngf // 16, 3), nn.Tanh())

    def forward(self, text: torch.Tensor, noise: torch.Tensor):
        c, mu, logvar = self.ca_net(text)
        h = self.fc(torch.cat([noise, c], 1)).view(-1, self.gf_dim, 4, 4)
        h = self.upsample4(self.upsample3(self.upsample2(self.upsample1(h))))
        return None, self.img(h), mu, logvar


class Stage1D(nn.Module):
    """64x64 image -> 8ndf x 4 x 4 code; `get_cond_logits` head only."""

    def __init__(self, df_dim: int = 64, condition_dim: int = 128, text_dim: int = 0):
        super().__init__()
        ndf = df_dim
        self.encode_img = nn.Sequential(*down_block(3, ndf, bn=False), *down_block(ndf, ndf * 2),
                                        *down_block(ndf * 2, ndf * 4),
                                        *down_block(ndf * 4, ndf * 8))
        self.get_cond_logits = DLogits(ndf, condition_dim, True, text_dim)
        self.get_uncond_logits = None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode_img(image)


class Stage2G(nn.Module):
    """(text, z) -> (Stage-I 64 image, 256 image, mu, logvar) around a frozen Stage-I G.

    The Stage-I generator's parameters never train. `stage1_bn_train` keeps the original's
    behaviour: the frozen net sits in a train-mode module, so its BatchNorm layers normalise with
    batch statistics and keep updating their running averages; False puts it in eval mode.
    """

    def __init__(self, stage1: Stage1G, gf_dim: int = 128, condition_dim: int = 128,
                 text_dim: int = 1024, r_num: int = 4, ca_type: str = "relu_logvar",
                 stage1_bn_train: bool = True):
        super().__init__()
        ngf, self.c_dim, self.stage1_bn_train = gf_dim, condition_dim, stage1_bn_train
        self.STAGE1_G = stage1.requires_grad_(False)
        self.ca_net = CANet(text_dim, condition_dim, ca_type)
        self.encoder = nn.Sequential(
            conv3x3(3, ngf), nn.ReLU(True),
            nn.Conv2d(ngf, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.Conv2d(ngf * 2, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True))
        self.hr_joint = nn.Sequential(conv3x3(condition_dim + ngf * 4, ngf * 4),
                                      nn.BatchNorm2d(ngf * 4), nn.ReLU(True))
        self.residual = nn.Sequential(*[ResBlock(ngf * 4) for _ in range(r_num)])
        self.upsample1 = up_block(ngf * 4, ngf * 2)
        self.upsample2 = up_block(ngf * 2, ngf)
        self.upsample3 = up_block(ngf, ngf // 2)
        self.upsample4 = up_block(ngf // 2, ngf // 4)
        self.img = nn.Sequential(conv3x3(ngf // 4, 3), nn.Tanh())

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.stage1_bn_train:
            self.STAGE1_G.eval()
        return self

    def forward(self, text: torch.Tensor, noise: torch.Tensor):
        with torch.no_grad():       # the Stage-I image is an input, never trained through
            _, stage1_img, _, _ = self.STAGE1_G(text, noise)
        code = self.encoder(stage1_img)
        c, mu, logvar = self.ca_net(text)
        tiled = c.view(-1, self.c_dim, 1, 1).expand(-1, -1, 16, 16)
        h = self.residual(self.hr_joint(torch.cat([code, tiled], 1)))
        h = self.upsample4(self.upsample3(self.upsample2(self.upsample1(h))))
        return stage1_img, self.img(h), mu, logvar


class Stage2D(nn.Module):
    """256x256 image -> 8ndf x 4 x 4 code; conditional and unconditional heads."""

    def __init__(self, df_dim: int = 64, condition_dim: int = 128, text_dim: int = 0):
        super().__init__()
        ndf = df_dim
        layers = down_block(3, ndf, bn=False)
        for mult in (1, 2, 4, 8, 16):
            layers += down_block(ndf * mult, ndf * mult * 2)
        layers += [conv3x3(ndf * 32, ndf * 16), nn.BatchNorm2d(ndf * 16),
                   nn.LeakyReLU(0.2, inplace=True), conv3x3(ndf * 16, ndf * 8),
                   nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True)]
        self.encode_img = nn.Sequential(*layers)
        self.get_cond_logits = DLogits(ndf, condition_dim, True, text_dim)
        self.get_uncond_logits = DLogits(ndf, condition_dim, False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.encode_img(image)


@torch.no_grad()
def init_weights(module: nn.Module) -> None:
    """v1 init: conv and linear weights N(0, 0.02), linear biases 0, BN weights N(1, 0.02) and
    biases 0; conv biases keep PyTorch's default. Use with `net.apply(init_weights)`."""
    if isinstance(module, nn.Conv2d):
        module.weight.normal_(0.0, 0.02)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        module.weight.normal_(1.0, 0.02)
        module.bias.zero_()
    elif isinstance(module, nn.Linear):
        module.weight.normal_(0.0, 0.02)
        if module.bias is not None:
            module.bias.zero_()


def networks_from_config(cfg) -> tuple[nn.Module, nn.Module]:
    """(G, D) for cfg.STAGE with the config's widths and switches, initialised as v1 does."""
    gan, t_dim = cfg.GAN, cfg.TEXT.DIMENSION
    d_text = t_dim if gan.D_TEXT == "embedding" else 0
    stage1 = Stage1G(cfg.Z_DIM, gan.CONDITION_DIM, t_dim, gan.GF_DIM, gan.CA_TYPE)
    if cfg.STAGE == 1:
        g, d = stage1, Stage1D(gan.DF_DIM, gan.CONDITION_DIM, d_text)
    else:
        g = Stage2G(stage1, gan.GF_DIM, gan.CONDITION_DIM, t_dim, gan.R_NUM, gan.CA_TYPE,
                    cfg.TRAIN.STAGE1_BN == "train")
        d = Stage2D(gan.DF_DIM, gan.CONDITION_DIM, d_text)
    g.apply(init_weights)
    d.apply(init_weights)
    return g, d

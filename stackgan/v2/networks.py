"""StackGAN++ (StackGAN-v2) networks: the tree generator, CA net v2 and one D per branch.

Layer widths, block structure and initialisation follow hanzhanggit/StackGAN-v2
(docs/stackgan_v2.md, "Networks"). Module and parameter names follow the original's state-dict layout
(`ca_net.fc`, `h_net1.upsample1.1`, `img_code_s16.0`, `logits.0`, ...) so that the released
`netG_*.pth` / `netD*.pth` files load once their DataParallel `module.` prefix is stripped.

Differences from the original, all deliberate:
- the discriminators return logits; the original's final sigmoid is applied in the loss
  (TRAIN.LOSS: sigmoid + BCELoss by default, or BCE with logits; common/losses.py);
- BRANCH_NUM 5 builds a working fifth branch (`h_net5`, `img_net5`); the original assigned the
  fifth branch to `h_net4` again, so 5 branches never worked there.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stackgan.conditioning import reparameterize
from stackgan.layers import conv3x3


# ---- building blocks -------------------------------------------------------------------------
class GLU(nn.Module):
    """Gated linear unit over channels: first half * sigmoid(second half)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(x, dim=1)


def up_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """x2 nearest upsample, conv3 to 2*out, BN, GLU."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(in_ch, out_ch * 2),
                         nn.BatchNorm2d(out_ch * 2), GLU())


def keep_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """conv3 to 2*out, BN, GLU at the same resolution (the original's Block3x3_relu)."""
    return nn.Sequential(conv3x3(in_ch, out_ch * 2), nn.BatchNorm2d(out_ch * 2), GLU())


class ResBlock(nn.Module):
    """conv3 (2ch), BN, GLU, conv3, BN, plus the input; no activation after the sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(conv3x3(channels, channels * 2), nn.BatchNorm2d(channels * 2),
                                   GLU(), conv3x3(channels, channels), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + x


def tile(code: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C) -> (B, C, size, size)."""
    return code[:, :, None, None].expand(-1, -1, size, size)


# ---- generator -------------------------------------------------------------------------------
class CANet(nn.Module):
    """Conditioning augmentation v2: Linear T -> 4C, GLU -> 2C = [mu, logvar]; c = mu + eps*std.

    eps is drawn on every call (evaluation included), as in the original.
    """

    def __init__(self, text_dim: int, cond_dim: int):
        super().__init__()
        self.cond_dim = cond_dim
        self.fc = nn.Linear(text_dim, cond_dim * 4, bias=True)

    def forward(self, embedding: torch.Tensor):
        x = F.glu(self.fc(embedding), dim=1)
        mu, logvar = x[:, :self.cond_dim], x[:, self.cond_dim:]
        # eps like mu, as the original: under autocast exp(logvar / 2) is float32, mu is not
        c = reparameterize(mu, logvar, lambda std: torch.randn_like(mu))
        return c, mu, logvar


class InitStage(nn.Module):
    """[c, z] -> Linear -> BN1d -> GLU -> ngf x 4 x 4, then four up-blocks to ngf/16 x 64 x 64."""

    def __init__(self, in_dim: int, ngf: int):
        super().__init__()
        self.ngf = ngf
        self.fc = nn.Sequential(nn.Linear(in_dim, ngf * 4 * 4 * 2, bias=False),
                                nn.BatchNorm1d(ngf * 4 * 4 * 2), GLU())
        self.upsample1 = up_block(ngf, ngf // 2)
        self.upsample2 = up_block(ngf // 2, ngf // 4)
        self.upsample3 = up_block(ngf // 4, ngf // 8)
        self.upsample4 = up_block(ngf // 8, ngf // 16)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        h = self.fc(code).view(-1, self.ngf, 4, 4)
        return self.upsample4(self.upsample3(self.upsample2(self.upsample1(h))))


class NextStage(nn.Module):
    """Tile c to h's size, concat [c, h], keep-block, residual blocks, up-block to ngf/2."""

    def __init__(self, ngf: int, cond_dim: int, num_residual: int):
        super().__init__()
        self.jointConv = keep_block(ngf + cond_dim, ngf)
        self.residual = nn.Sequential(*[ResBlock(ngf) for _ in range(num_residual)])
        self.upsample = up_block(ngf, ngf // 2)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = torch.cat([tile(c, h.shape[2]), h], dim=1)
        return self.upsample(self.residual(self.jointConv(x)))


class ImageHead(nn.Module):
    """conv3 to 3 channels, tanh."""

    def __init__(self, ngf: int):
        super().__init__()
        self.img = nn.Sequential(conv3x3(ngf, 3), nn.Tanh())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.img(h)


class TreeGenerator(nn.Module):
    """G_NET: a tree of `branches` stages, each emitting an image at 64 * 2^i.

    Conditional: c = CA(text embedding); unconditional: c = z (no CA, no KL). The same c feeds
    every branch. Returns ([images, smallest first], mu, logvar); mu and logvar are None when
    unconditional.
    """

    def __init__(self, branches: int = 3, gf_dim: int = 64, z_dim: int = 100,
                 cond_dim: int = 128, text_dim: int = 1024, r_num: int = 2,
                 conditional: bool = True):
        super().__init__()
        if not 1 <= branches <= 5:
            raise ValueError(f"branches must be 1..5, got {branches}")
        self.branches, self.z_dim, self.conditional = branches, z_dim, conditional
        code_dim = cond_dim if conditional else z_dim
        if conditional:
            self.ca_net = CANet(text_dim, cond_dim)
        self.h_net1 = InitStage(z_dim + (cond_dim if conditional else 0), gf_dim * 16)
        self.img_net1 = ImageHead(gf_dim)
        for i in range(2, branches + 1):
            ngf = gf_dim // 2 ** (i - 2)
            # the 512 and 1024 branches have a single residual block in the original
            self.add_module(f"h_net{i}", NextStage(ngf, code_dim, r_num if i <= 3 else 1))
            self.add_module(f"img_net{i}", ImageHead(ngf // 2))

    def forward(self, z: torch.Tensor, embedding: torch.Tensor | None = None):
        if self.conditional:
            if embedding is None:
                raise ValueError("a conditional generator needs a text embedding")
            c, mu, logvar = self.ca_net(embedding)
            h = self.h_net1(torch.cat([c, z], dim=1))
        else:
            c, mu, logvar = z, None, None
            h = self.h_net1(z)
        images = [self.img_net1(h)]
        for i in range(2, self.branches + 1):
            h = getattr(self, f"h_net{i}")(h, c)
            images.append(getattr(self, f"img_net{i}")(h))
        return images, mu, logvar


# ---- discriminators --------------------------------------------------------------------------
def down_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """4x4 stride-2 conv, BN, LReLU(0.2)."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False), nn.BatchNorm2d(out_ch),
                         nn.LeakyReLU(0.2, inplace=True))


def d_keep_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """conv3, BN, LReLU(0.2) (the original's Block3x3_leakRelu)."""
    return nn.Sequential(conv3x3(in_ch, out_ch), nn.BatchNorm2d(out_ch),
                         nn.LeakyReLU(0.2, inplace=True))


def encode_16x(ndf: int) -> nn.Sequential:
    """3 -> ndf (no BN) -> 2ndf -> 4ndf -> 8ndf, each a 4x4 stride-2 conv: input / 16."""
    return nn.Sequential(
        nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, inplace=True))


class BranchDiscriminator(nn.Module):
    """D_NET64 / 128 / 256 / 512 / 1024 for an image of 64 * 2^level pixels.

    The image is encoded to 8ndf x 4 x 4: the 16x encoder, `level` more down-blocks doubling the
    width, then `level` keep-blocks halving it back. Heads on that code x:
    conditional `logits` on keep-block([tile(mu), x]) and unconditional `uncond_logits` on x
    (both 4x4 stride-4 convs with bias). Unconditional mode has only `logits`, applied to x.
    forward returns a list of logits: [cond, uncond] or [uncond-mode logit].
    """

    def __init__(self, level: int, df_dim: int = 64, cond_dim: int = 128,
                 conditional: bool = True):
        super().__init__()
        self.level, self.conditional, ndf = level, conditional, df_dim
        self.img_code_s16 = encode_16x(ndf)
        width = ndf * 8
        for k in range(level):  # img_code_s32, img_code_s64, ...
            self.add_module(f"img_code_s{32 * 2 ** k}", down_block(width, width * 2))
            width *= 2
        last = f"img_code_s{16 * 2 ** level}"
        for k in range(level):  # e.g. img_code_s64_1, img_code_s64_2
            self.add_module(f"{last}_{k + 1}", d_keep_block(width, width // 2))
            width //= 2
        self._encoder_names = ["img_code_s16"] + [
            f"img_code_s{32 * 2 ** k}" for k in range(level)] + [
            f"{last}_{k + 1}" for k in range(level)]
        self.logits = nn.Sequential(nn.Conv2d(ndf * 8, 1, kernel_size=4, stride=4))
        if conditional:
            self.jointConv = d_keep_block(ndf * 8 + cond_dim, ndf * 8)
            self.uncond_logits = nn.Sequential(nn.Conv2d(ndf * 8, 1, kernel_size=4, stride=4))

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        for name in self._encoder_names:
            x = getattr(self, name)(x)
        return x

    def forward(self, image: torch.Tensor, mu: torch.Tensor | None = None) -> list[torch.Tensor]:
        x = self.encode(image)
        if not self.conditional:
            return [self.logits(x).view(-1)]
        if mu is None:
            raise ValueError("a conditional discriminator needs the condition mu")
        h = self.jointConv(torch.cat([tile(mu, x.shape[2]), x], dim=1))
        return [self.logits(h).view(-1), self.uncond_logits(x).view(-1)]


# ---- initialisation --------------------------------------------------------------------------
@torch.no_grad()
def init_weights(module: nn.Module) -> None:
    """Orthogonal (gain 1) conv and linear weights, linear bias 0, BN weight ~ N(1, 0.02), bias 0.

    Conv biases (only the logit convs have one) keep PyTorch's default, as in the original.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.orthogonal_(m.weight, 1.0)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.weight.normal_(1.0, 0.02)
            m.bias.zero_()
        elif isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, 1.0)
            if m.bias is not None:
                m.bias.zero_()


def build_generator(gan_cfg, branches: int, text_dim: int) -> TreeGenerator:
    g = TreeGenerator(branches, gan_cfg.GF_DIM, gan_cfg.Z_DIM, gan_cfg.EMBEDDING_DIM, text_dim,
                      gan_cfg.R_NUM, gan_cfg.B_CONDITION)
    init_weights(g)
    return g


def build_discriminators(gan_cfg, branches: int) -> list[BranchDiscriminator]:
    ds = [BranchDiscriminator(level, gan_cfg.DF_DIM, gan_cfg.EMBEDDING_DIM, gan_cfg.B_CONDITION)
          for level in range(branches)]
    for d in ds:
        init_weights(d)
    return ds

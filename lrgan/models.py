"""The LR-GAN generator: an LSTM over per-step noise, a background generator G_b, one shared
foreground generator G_f (appearance + mask heads), the pose head, and the "top" connections
used when there are more than two steps (docs/lrgan.md, "What is faithful").

Sub-module names are those of the original `_netG` (Gbgc, Gbgi, Gfgc, Gfgi, Gfgm, Gtransform,
encoderconv, encoderfc, nlnet, lstmcell; trunk layers named by their input size), so the state
dict has the original's keys.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from common.ops import stnm
from lrgan.pose import PoseHead, pose_to_theta

SIZES = (32, 64)   # the layer-building rules only give consistent nets at these sizes


def upsampling_trunk(nz: int, first: int, second: int, nsize: int, bias: bool,
                     floor: int = 64) -> tuple[nn.Sequential, int]:
    """ConvT(nz -> first, k4 s4) to 4x4, then k4 s2 up-convolutions up to nsize/2.

    Channels: first, second, then max(previous // 2, floor) (the original's floor is 64).
    Returns the trunk and its output channel count.
    """
    net = nn.Sequential()
    net.add_module("convt1", nn.ConvTranspose2d(nz, first, 4, 4, 0, bias=bias))
    net.add_module("bn1", nn.BatchNorm2d(first))
    net.add_module("relu1", nn.ReLU(True))
    size, d_in, d_out = 4, first, second
    while size < nsize // 2:
        net.add_module(f"convt{size}", nn.ConvTranspose2d(d_in, d_out, 4, 2, 1, bias=bias))
        net.add_module(f"bn{size}", nn.BatchNorm2d(d_out))
        net.add_module(f"relu{size}", nn.ReLU(True))
        d_in, d_out, size = d_out, max(d_out // 2, floor), size * 2
    return net, d_in


def trunk_channels(first: int, second: int, nsize: int, floor: int = 64) -> int:
    """Output channels of `upsampling_trunk` without building it (for config checks)."""
    size, d_in, d_out = 4, first, second
    while size < nsize // 2:
        d_in, d_out, size = d_out, max(d_out // 2, floor), size * 2
    return d_in


def image_head(channels_in: int, channels_out: int, bias: bool, activation: nn.Module):
    """ConvT(k4 s2 p1) from nsize/2 to nsize, then tanh (images) or sigmoid (masks)."""
    return nn.Sequential(nn.ConvTranspose2d(channels_in, channels_out, 4, 2, 1, bias=bias),
                         activation)


def feature_encoder(depth: int, nsize: int) -> nn.Sequential:
    """[AvgPool(k4 s2 p1), BN, LeakyReLU(0.2)] from nsize/2 down to 2x2 (no learned convs)."""
    net = nn.Sequential()
    size = nsize // 2
    while size > 2:
        net.add_module(f"avgpool{size}", nn.AvgPool2d(4, 2, 1))
        net.add_module(f"bn{size}", nn.BatchNorm2d(depth))
        net.add_module(f"lrelu{size}", nn.LeakyReLU(0.2, inplace=True))
        size //= 2
    return net


def dense_tanh(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.Tanh())


@dataclass
class Layers:
    """Everything one generator pass makes (lists are per step; foreground lists start at t=1)."""

    final: torch.Tensor                                  # (B, C, H, W) the last canvas
    canvases: list = field(default_factory=list)         # T canvases; canvases[0] = background
    fgs: list = field(default_factory=list)              # T-1 appearances f_t, canonical frame
    masks: list = field(default_factory=list)            # T-1 masks m_t, canonical frame
    poses: list = field(default_factory=list)            # T-1 clamped (B, 6) pose entries
    thetas: list = field(default_factory=list)           # T-1 (B, 2, 3) affine_grid thetas


class Generator(nn.Module):
    """LR-GAN generator for nsize 32 or 64. `forward(z)` takes noise (T, B, nz)."""

    def __init__(self, nsize: int = 32, nc: int = 3, nz: int = 100, ngf: int = 64,
                 ntimestep: int = 2, maxobjscale: float = 1.2, rot: float = 0.1,
                 translation: float = 1.0, bg_noise: str = "raw", mask_grad: str = "original",
                 stnm_impl: str = "auto", channel_floor: int = 64):
        super().__init__()
        if nsize not in SIZES:
            raise ValueError(f"LR-GAN image size must be one of {SIZES}, got {nsize}")
        if bg_noise not in ("raw", "lstm"):
            raise ValueError(f"bg_noise must be 'raw' or 'lstm', got {bg_noise!r}")
        self.nsize, self.nc, self.nz, self.ntimestep = nsize, nc, nz, ntimestep
        self.bg_noise, self.mask_grad, self.stnm_impl = bg_noise, mask_grad, stnm_impl
        self.lstmcell = nn.LSTMCell(nz, nz)
        # Background: DCGAN-like, 4*ngf wide at 4x4, every conv with a bias.
        self.Gbgc, depth_bg = upsampling_trunk(nz, 4 * ngf, 2 * ngf, nsize, True, channel_floor)
        self.Gbgi = image_head(depth_bg, nc, True, nn.Tanh())
        # Foreground: twice as wide, bias-free trunk; appearance (no bias) and mask (bias) heads.
        self.Gfgc, depth_fg = upsampling_trunk(nz, 8 * ngf, 4 * ngf, nsize, False, channel_floor)
        self.Gfgi = image_head(depth_fg, nc, False, nn.Tanh())
        self.Gfgm = image_head(depth_fg, 1, True, nn.Sigmoid())
        self.Gtransform = PoseHead(nz, maxobjscale, rot, translation)
        # "Top" connections (used when T > 2, always built as in the original).
        self.depth_bg, self.depth_fg = depth_bg, depth_fg
        self.encoderconv = feature_encoder(depth_fg, nsize)
        self.encoderfc = dense_tanh(depth_fg * 2 * 2, nz)
        self.nlnet = dense_tanh(2 * nz, nz)
        if ntimestep > 2 and depth_bg != depth_fg:
            raise ValueError(
                f"ntimestep {ntimestep} > 2 encodes the background features ({depth_bg} "
                f"channels) with the foreground encoder ({depth_fg} channels); the original only "
                "supports this when both are equal (64 px with ngf 64)")

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        return self.encoderfc(self.encoderconv(features).flatten(1))

    def forward(self, z: torch.Tensor) -> Layers:
        steps, batch, _ = z.shape
        if steps != self.ntimestep:
            raise ValueError(f"noise has {steps} steps, the generator {self.ntimestep}")
        h = z.new_zeros(batch, self.nz)
        c = z.new_zeros(batch, self.nz)
        layers = None
        for t in range(steps):
            h, c = self.lstmcell(z[t], (h, c))
            if t == 0:
                # The code feeds raw z_0 to G_b (so T=1 is "DCGAN"); the paper feeds h_0.
                u = z[0] if self.bg_noise == "raw" else h
                previous = self.Gbgc(u[:, :, None, None])
                canvas = self.Gbgi(previous)
                layers = Layers(final=canvas, canvases=[canvas])
                continue
            u = self.nlnet(torch.cat([h, self.encode(previous)], 1)) if steps > 2 else h
            previous = self.Gfgc(u[:, :, None, None])
            fg, mask = self.Gfgi(previous), self.Gfgm(previous)
            pose = self.Gtransform(u)
            theta = pose_to_theta(pose)
            canvas = stnm(canvas, fg, mask, theta, impl=self.stnm_impl, mask_grad=self.mask_grad)
            layers.canvases.append(canvas)
            layers.fgs.append(fg)
            layers.masks.append(mask)
            layers.poses.append(pose)
            layers.thetas.append(theta)
        layers.final = canvas
        return layers

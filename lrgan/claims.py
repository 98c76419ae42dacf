"""Measures of the LR-GAN claims (cfg/claims/lrgan_*.yml): does the generator separate the object
from the background? Read from the generated layers alone, never from the data generator:

- bg_flatness: spatial std of the background layer / spatial std of the final image (means over
  samples); a flat background gives ~0, a background that is the whole picture gives 1.
- ink_covered: share of the final image's ink pixels (farther than INK from the image's median
  grey) where the warped foreground mask is above 0.5.
- mask_on_ink: share of the warped masks' mass lying on ink pixels.
- bg_agreement / fg_agreement: share of samples where the digit classifier reads the same class
  in the background layer alone (resp. the foregrounds pasted with their masks onto a flat grey,
  the background's median level) as in the final image: the layer that carries the digit agrees.
- bg_confidence / fg_confidence / flat_confidence: the classifier's mean top softmax probability
  on the same pictures, and on flat grey images of the backgrounds' levels (a control: a
  classifier never shown blank images can be confident on them, which makes confidence alone a
  poor test of "no digit here").
The 1-timestep twin has no foreground: its single layer is its background.
"""
from __future__ import annotations

import torch

from common.images import save_grid
from common.reproduce.scoring import Measured
from lrgan import decompose

INK = 0.25        # in [-1, 1] units: 1/8 of the range from the median grey
SAMPLES = 1000    # samples the layer statistics are read from (at most the budget's n)


def _median(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).median(1).values.view(-1, 1, 1, 1)


def _read(classifier, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(top softmax probability, class) per image."""
    from common.metrics.project_features import prepare
    net, meta = classifier
    with torch.no_grad():
        x = prepare(((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8),
                    meta["input_size"], meta["channels"])
        _, logits = net.features_and_logits(x)
    return logits.softmax(1).max(1)


def layer_statistics(layers, net, impl: str = "auto") -> dict:
    final, background = layers.final.float(), layers.canvases[0].float()
    std = lambda x: x.flatten(1).std(1).mean().item()  # noqa: E731
    out = {"bg_flatness": std(background) / max(std(final), 1e-8)}
    if net is not None:
        _, final_class = _read(net, final)
        conf, cls = _read(net, background)
        out["bg_confidence"] = conf.mean().item()
        out["bg_agreement"] = (cls == final_class).float().mean().item()
        flat = _median(background).expand_as(background)
        out["flat_confidence"] = _read(net, flat)[0].mean().item()
    if not layers.masks:
        out["ink_covered"] = 0.0
        return out
    pairs = decompose.warped(layers, impl)
    mask = torch.stack([m for _, m in pairs]).amax(0)               # (B, 1, H, W) in [0, 1]
    ink = ((final - _median(final)).abs() > INK).float().mean(1, keepdim=True)
    ink = (ink > 0).float()
    out["ink_covered"] = ((mask > 0.5).float() * ink).sum().item() / max(ink.sum().item(), 1.0)
    out["mask_on_ink"] = (mask * ink).sum().item() / max(mask.sum().item(), 1e-8)
    if net is not None:
        canvas = _median(background).expand_as(background).clone()
        for fg_warped, mask_warped in pairs:
            canvas = mask_warped * fg_warped + (1 - mask_warped) * canvas
        conf, cls = _read(net, canvas)
        out["fg_confidence"] = conf.mean().item()
        out["fg_agreement"] = (cls == final_class).float().mean().item()
    return out


def decomposition(ctx) -> Measured:
    """The layer statistics of ctx.trainer's samples, and the decomposition grid."""
    from common.metrics import project_features
    trainer = ctx.trainer
    net = None
    if ctx.features is not None:
        weights, meta = project_features.locate(ctx.features)
        net = (project_features.load_net(weights, meta).to(trainer.device), meta)
    layers = trainer.generate_layers(min(SAMPLES, ctx.budget.n), seed=0)
    values = layer_statistics(layers, net, trainer.cfg.MODEL.STNM_IMPL)
    pictures = {}
    if trainer.steps > 1:
        images, per_row = decompose.decomposition(layers, 8, trainer.cfg.MODEL.STNM_IMPL)
        pictures["decomposition"] = save_grid(images, ctx.pictures / "decomposition.png",
                                              nrow=per_row)
    return Measured(values=values, pictures=pictures)

"""scripts/sample.py options of the acVAE family, and conditional samples for the metrics.

python scripts/sample.py RUN_OR_CKPT out.png --attrs Male=1,Smiling=1,Eyeglasses=0
       [--ref 000042.jpg] [--sweep Smiling --sweep-steps 8] [--n 64 --seed 0]

Attribute values: 1 (or yes/true) = present, 0 (or -1/no/false) = absent, written in the coding
the model was trained with (DATA.OPTIONS.ATTR_CODING: pm1 -> +1/-1, 01 -> 1/0); any other number
is used as is. Attributes not named come from the reference image `--ref` (looked up in the
run's attribute list) or are 0. Without --attrs and --ref, the samples are conditioned on the
validation attributes stored in the checkpoint. Pictures: samples.png; with --sweep, one row per
noise draw with the attribute going from absent to present; for acvaegan, the attention matrix.
"""
from __future__ import annotations

import torch

from common.data import celeba
from common.errors import ConfigError, DataError

TRUE, FALSE = ("1", "yes", "true", "+1"), ("0", "-1", "no", "false")


def add_sample_args(parser) -> None:
    g = parser.add_argument_group("acVAE family")
    g.add_argument("--attrs", default="", metavar="NAME=V,...",
                   help="attributes by name, e.g. Male=1,Smiling=1,Eyeglasses=0")
    g.add_argument("--ref", default="", metavar="IMAGE",
                   help="reference image (e.g. 000042.jpg) whose attributes fill the rest")
    g.add_argument("--data-root", default="",
                   help="CelebA folder holding the attribute list (default: the run's DATA.ROOT)")
    g.add_argument("--sweep", default="", metavar="NAME",
                   help="vary one attribute from absent to present across each row")
    g.add_argument("--sweep-steps", type=int, default=8, help="columns of the sweep")


def _levels(trainer) -> tuple[float, float]:
    coding = trainer.cfg.DATA.OPTIONS.get("ATTR_CODING", "pm1")
    return (0.0, 1.0) if coding == "01" else (-1.0, 1.0)


def _index(name: str) -> int:
    if name not in celeba.ATTRIBUTES:
        raise ConfigError(f"unknown attribute {name!r}; the CelebA attributes are: "
                          f"{', '.join(celeba.ATTRIBUTES)}")
    return celeba.ATTRIBUTES.index(name)


def parse_attrs(text: str, trainer) -> dict[int, float]:
    """'Male=1,Smiling=0' -> {attribute index: value in the model's coding}."""
    absent, present = _levels(trainer)
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--attrs item {item!r} is not NAME=VALUE")
        v = value.strip().lower()
        if v in TRUE:
            out[_index(name.strip())] = present
        elif v in FALSE:
            out[_index(name.strip())] = absent
        else:
            try:
                out[_index(name.strip())] = float(v)
            except ValueError:
                raise ConfigError(f"--attrs value {value!r} of {name} is not 1, 0 or a number") \
                    from None
    return out


def reference_attributes(trainer, image: str, root: str = "") -> torch.Tensor:
    """The 40 attributes of a CelebA image (by file name) in the model's coding."""
    data_cfg = trainer.cfg.DATA
    files = celeba.find_files(root or data_cfg.ROOT, dict(data_cfg.OPTIONS), images=False)
    _, names, values = celeba.read_attributes(files["attr"])
    if image not in names:
        raise DataError(f"{files['attr']}: has no image {image!r} (--ref takes a file name "
                        "such as 000042.jpg)")
    coding = data_cfg.OPTIONS.get("ATTR_CODING", "pm1")
    return torch.from_numpy(celeba.code_attributes(values[names.index(image)], coding))


def condition(trainer, args) -> torch.Tensor | None:
    """The attribute vector asked for on the command line, or None (use the stored ones)."""
    if not args.attrs and not args.ref:
        return None
    y = (reference_attributes(trainer, args.ref, args.data_root) if args.ref
         else torch.zeros(trainer.A))
    for j, value in parse_attrs(args.attrs, trainer).items():
        y[j] = value
    return y.to(trainer.device)


def sample(trainer, args) -> dict:
    n, gen = args.n, torch.Generator(device=trainer.device).manual_seed(args.seed)
    if trainer.variant.startswith("mnist"):
        return {"samples": (trainer.generate(n, args.seed), args.nrow)}
    y = condition(trainer, args)
    attrs = trainer.vis_batch(n)[1] if y is None else y.expand(n, -1).clone()
    pictures = {}
    with trainer.evaluating():
        pictures["samples"] = (trainer.sample_images(attrs, gen), args.nrow)
        if args.sweep:
            pictures["sweep"] = (sweep(trainer, attrs, _index(args.sweep), args.sweep_steps,
                                       max(1, n // args.sweep_steps), gen), args.sweep_steps)
        if "attention" in trainer.nets:
            from acvae.pictures import attention_picture
            pictures["attention"] = (attention_picture(trainer.nets["attention"]()), 1)
    return pictures


def sweep(trainer, attrs: torch.Tensor, j: int, steps: int, rows: int, gen) -> torch.Tensor:
    """rows x steps images: per row one noise draw and one attribute vector, with attribute j
    going linearly from absent to present across the row."""
    lo, hi = _levels(trainer)
    values = torch.linspace(lo, hi, steps, device=trainer.device)
    noise = trainer.randn(rows, gen).repeat_interleave(steps, dim=0)
    y = attrs[:rows].repeat_interleave(steps, dim=0).clone()
    y[:, j] = values.repeat(rows)
    return trainer.sample_images(y, None, noise=noise)


def eval_samples(trainer, n: int, seed: int = 0, batch_size: int = 64):
    """Batches {"image", "attributes"} of n samples conditioned on test-split attribute vectors
    (a seeded permutation of the split, cycled), for FID/IS and attribute accuracy. MNIST
    variants are unconditional: {"image"} only. A value > 0 means "present" in both codings."""
    gen = torch.Generator(device=trainer.device).manual_seed(seed)
    if trainer.variant.startswith("mnist"):
        for start in range(0, n, batch_size):
            with torch.no_grad(), trainer.evaluating():
                yield {"image": trainer.sample_images(
                    torch.zeros(min(batch_size, n - start), 1, device=trainer.device), gen)}
        return
    cfg = trainer.cfg.DATA
    _, values = celeba.split_attributes(cfg.ROOT, "test", dict(cfg.OPTIONS))
    order = torch.randperm(len(values), generator=torch.Generator().manual_seed(seed))
    order = order.repeat(-(-n // len(values)))[:n]
    table = torch.from_numpy(values)
    for start in range(0, n, batch_size):
        attrs = table[order[start:start + batch_size]].to(trainer.device)
        with torch.no_grad(), trainer.evaluating():
            yield {"image": trainer.sample_images(attrs, gen), "attributes": attrs}

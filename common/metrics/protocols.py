"""Named evaluation protocols: each name resolves to exact settings written beside every number.

A protocol fixes how many images are generated, how IS splits them, which real images are the
reference and which classifier scores IS. The command line may change single settings; the
record then lists them under "overrides", so a number is never mistaken for the named protocol.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from common.metrics.weights import MetricsError

METRICS = ("is", "fid", "kid", "pr", "attr")
BINARY = ("fid", "kid", "pr")          # metrics that compare with real reference images


@dataclass(frozen=True)
class Protocol:
    name: str
    doc: str
    metrics: tuple[str, ...]          # computed when --metrics is not given
    n: int                            # generated images
    splits: int = 10                  # IS: mean and std over this many splits
    reference_split: str = ""         # "" = the split the model trains on (DATA.SPLIT)
    reference_n: int = 0              # real images in the reference set; 0 = all of the split
    resolution: int = 0               # required generator output size; 0 = whatever it makes
    is_classifier: str = "inception"  # "inception" (ImageNet) | "user" (--is-classifier)
    drop_first_logit: bool = False    # user classifier: its first output is a background class
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_neighborhood: int = 3
    features: str = ""                # tag of the project's feature network it needs (--features)
    source: str = ""                  # where the protocol comes from
    overrides: dict = field(default_factory=dict)

    def with_overrides(self, **changes) -> "Protocol":
        """A copy with some settings changed; the changes are remembered for the record."""
        changes = {k: v for k, v in changes.items() if v is not None and getattr(self, k) != v}
        if not changes:
            return self
        return dataclasses.replace(self, overrides={**self.overrides, **changes}, **changes)


PROTOCOLS = {p.name: p for p in [
    Protocol("is50k", "Inception Score of 50,000 samples in 10 splits, ImageNet Inception "
             "(CIFAR-10 IS of LR-GAN; Salimans et al. 2016)", ("is",), 50_000,
             source="Salimans et al. 2016; the LR-GAN and RP-GAN papers' IS tables"),
    Protocol("fid50k", "FID of 50,000 samples against all real images of the training split",
             ("fid",), 50_000, source="Heusel et al. 2017 (TTUR); StyleGAN fid50k_full"),
    Protocol("fid10k", "FID of 10,000 samples against the training split: cheap enough for "
             "curves over training (RP-GAN FID against iterations)", ("fid",), 10_000,
             source="RP-GAN paper, FID against iterations (docs/metrics.md, Protocols)"),
    Protocol("stackgan_is30k", "IS of 30,000 256 px samples drawn from the evaluation-split "
             "captions, 10 splits, ImageNet Inception (StackGAN COCO protocol)", ("is",), 30_000,
             resolution=256,
             source="StackGAN papers' COCO IS (docs/stackgan.md, Sampling and evaluation)"),
    Protocol("stackgan_birds_is30k", "as stackgan_is30k, scored by the user-supplied Inception "
             "fine-tuned on the CUB test classes (50 classes + background logit, dropped)",
             ("is",), 30_000, resolution=256, is_classifier="user", drop_first_logit=True,
             source="StackGAN's birds Inception birds_valid299/model.ckpt-5000 "
                    "(docs/metrics.md, A classifier of your own for IS)"),
    Protocol("stackgan_fid30k", "FID of 30,000 256 px samples from the evaluation captions "
             "against the real evaluation-split images (same crop)", ("fid",), 30_000,
             reference_split="test", resolution=256,
             source="our protocol (docs/stackgan.md, Sampling and evaluation)"),
    Protocol("acvae_test", "one sample per CelebA test-set attribute vector (19,962), FID and IS "
             "against the real test images, and attribute accuracy", ("fid", "is", "attr"),
             19_962, reference_split="test",
             source="our protocol (docs/metrics.md, Attribute accuracy)"),
    Protocol("fd_mnist10k", "FD, KID, precision/recall (128-d features) and IS (10 digit "
             "classes) of 10,000 samples against 10,000 real images, the project's MNIST "
             "feature network (--features)", ("fid", "kid", "pr", "is"), 10_000,
             reference_n=10_000, features="mnist", source="docs/metrics.md (our protocol)"),
    Protocol("fd_cifar10_10k", "FD, KID, precision/recall (256-d features) and IS (10 classes) "
             "of 10,000 samples against 10,000 real images, the project's CIFAR-10 feature "
             "network (--features)", ("fid", "kid", "pr", "is"), 10_000, reference_n=10_000,
             features="cifar10", source="docs/metrics.md (our protocol)"),
    Protocol("fd_celeba64_10k", "FD, KID, precision/recall (128-d features) of 10,000 samples "
             "against 10,000 real faces, the project's 64 px CelebA attribute network "
             "(--features)", ("fid", "kid", "pr"), 10_000, reference_n=10_000,
             features="celeba64", source="docs/metrics.md (our protocol)"),
]}


def resolve(name: str, n: int | None = None, splits: int | None = None,
            reference_split: str | None = None, reference_n: int | None = None) -> Protocol:
    if name not in PROTOCOLS:
        raise MetricsError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    protocol = PROTOCOLS[name].with_overrides(n=n, splits=splits, reference_split=reference_split,
                                              reference_n=reference_n)
    if protocol.n < 1:
        raise MetricsError(f"protocol {protocol.name}: the sample count must be positive, "
                           f"got {protocol.n}")
    return protocol


def parse_metrics(text: str | list | tuple, protocol: Protocol) -> tuple[str, ...]:
    """'is,fid' or ['is', 'fid'] -> ('is', 'fid'); empty -> the protocol's metrics."""
    items = [m.strip().lower() for m in (text.split(",") if isinstance(text, str) else text)]
    items = [m for m in items if m]
    if not items:
        return protocol.metrics
    unknown = [m for m in items if m not in METRICS]
    if unknown:
        raise MetricsError(f"unknown metric(s) {', '.join(unknown)}; expected some of "
                           f"{', '.join(METRICS)}")
    return tuple(dict.fromkeys(items))


def describe() -> str:
    """The protocol table for --list-protocols."""
    return "\n".join(f"{p.name:22s} {p.doc}" for p in PROTOCOLS.values())

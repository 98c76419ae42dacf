"""The original's released models (ayanc/rpgan, TensorFlow) as a ganrepro run directory.

The original stores every network with numpy.savez (rpglib/utils.py netsave): one float32 array
per TF variable, keyed by its name, in TF layouts.
  G, `iter_<n>.gmodel.npz` (gen.py):
      c1_w [1, 1, zlen, 16 F]  the FC layer as a 1x1 conv; the graph reshapes its output to
                               [B, 4, 4, F], so output unit (h * 4 + w) * F + c is pixel (h, w)
                               of channel c. Ours is viewed as [B, F, 4, 4]: unit c * 16 + h * 4
                               + w. The columns are permuted (a plain copy "works" and gives
                               wrong images).
      c<l>_w [4, 4, C_out, C_in]  conv2d_transpose filters -> ConvTranspose2d [C_in, C_out, 4, 4]
                               (no flip: both are the adjoint of the same cross-correlation)
      c<l>_b [C_out]           added after batch norm (the last layer: before tanh)
  G with fixbn's statistics, `iter_<n>.bgmodel.npz` (genx.py): the same plus bnm_c<l>_w (mean)
      and bnv_c<l>_w (biased variance) [C] of every batch-norm layer.
  D, `iter_<n>.dmodel.npz` (disc.py): c<k>_<j>_w [kh, kw, C_in, C_out], c<k>_<j>_b [C_out] for
      discriminator k, layer j; the baseline's (disc0.py) c<j>_w, c<j>_b. The projection filters
      are not in it: they are the run's filts.npz.
A file whose names or shapes do not fit the config is a CheckpointError naming the variable.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import torch

from common.data.npfiles import load_failure
from common.errors import CheckpointError, ConfigError, UserError
from rpgan.sampling import FIXBN_BATCH

G_KEYS = ("DATA.IMAGE_SIZE", "MODEL.Z_DIM", "MODEL.G_WIDTH")
D_KEYS = ("MODEL.D_TYPE", "PROJ.K", "DATA.IMAGE_SIZE", "MODEL.D_WIDTH", "PROJ.STRIDE",
          "PROJ.CHANNELS")


def describe(cfg, keys) -> str:
    """'A.B=1, C.D=2': the config keys that decide a network's variables."""
    from common.config import get
    return ", ".join(f"{key}={get(cfg, key)}" for key in keys)


# ---- files ------------------------------------------------------------------------------------
def iteration_of(path: str | Path) -> int | None:
    """The iteration in an original file name, read as the original did (the digits after the
    last '_' that has digits behind it): iter_40000.gmodel.npz -> 40000."""
    match = re.match(r".*_(\d+)", Path(path).name)
    return int(match.group(1)) if match else None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def read_npz(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """{variable name: array} of an original .npz file (no pickles)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: np.asarray(archive[name]) for name in archive.files}
    except AttributeError:   # np.load gave a plain array: an .npy file
        raise CheckpointError(f"{path}: {what} is a single array, not an .npz archive of "
                              "named variables") from None
    except Exception as err:  # zip and format errors come in many types
        raise CheckpointError(f"{path}: not a readable {what} (.npz archive: "
                              f"{load_failure(path, err)})") from None


def check_variables(arrays: dict, expected: dict[str, tuple], path, what: str,
                    keys: str, hint=lambda name: "") -> None:
    """Nothing but the expected variables (unknown names first: they tell a wrong file
    apart), each present with its shape."""
    for name in arrays:
        if name not in expected:
            raise CheckpointError(f"{path}: variable {name} is not one of the {what} of this "
                                  f"config ({keys}){hint(name)}")
    for name, shape in expected.items():
        if name not in arrays:
            raise CheckpointError(f"{path}: has no variable {name}; the {what} of this config "
                                  f"({keys}) need it with shape {list(shape)}")
        have = arrays[name]
        if tuple(have.shape) != tuple(shape):
            raise CheckpointError(f"{path}: variable {name} has shape {list(have.shape)}; the "
                                  f"{what} of this config ({keys}) need {list(shape)}")
        if not np.issubdtype(have.dtype, np.floating):
            raise CheckpointError(f"{path}: variable {name} is {have.dtype}; expected float32")


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


# ---- the generator ------------------------------------------------------------------------------
def generator_variables(generator, population: bool) -> dict[str, tuple]:
    """The original's variable names and TF shapes for our generator."""
    f, z = generator.width, generator.z_dim
    shapes = {"c1_w": (1, 1, z, 16 * f), "c1_b": (f,)}
    for i, deconv in enumerate(generator.deconvs):
        cin, cout = deconv.in_channels, deconv.out_channels
        shapes[f"c{i + 2}_w"], shapes[f"c{i + 2}_b"] = (4, 4, cout, cin), (cout,)
    if population:
        for i, norm in enumerate(generator.norms):
            c = norm.bias.shape[0]
            shapes[f"bnm_c{i + 1}_w"], shapes[f"bnv_c{i + 1}_w"] = (c,), (c,)
    return shapes


def fc_weight(c1_w: np.ndarray, width: int) -> torch.Tensor:
    """c1_w [1, 1, zlen, 16 F], columns in (h, w, c) order -> Linear weight [16 F, zlen] with
    rows in (c, h, w) order, the order of our view as [B, F, 4, 4]."""
    w = c1_w[0, 0]
    w = w.reshape(w.shape[0], 4, 4, width).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
    return _tensor(w.T)


def _not_generator_hint(name: str) -> str:
    if name.startswith(("bnm_", "bnv_")):
        return ": a population statistic of fixbn.py; pass this file as --bgmodel"
    if re.fullmatch(r"c\d+_\d+_[wb]", name):
        return ": a discriminator variable; pass this file as --dmodel"
    return ""


@torch.no_grad()
def load_generator(generator, arrays: dict, path, population: bool,
                   keys: str = ", ".join(G_KEYS)) -> None:
    """Copy an original G (with its fixbn statistics when `population`) into our generator;
    `keys` names the config keys that shaped it, for the errors."""
    what = "generator variables" + (" and batch-norm statistics" if population else "")
    check_variables(arrays, generator_variables(generator, population), path, what, keys,
                    _not_generator_hint)
    generator.fc.weight.copy_(fc_weight(arrays["c1_w"], generator.width))
    generator.norms[0].bias.copy_(_tensor(arrays["c1_b"]))
    last = len(generator.deconvs) - 1
    for i, deconv in enumerate(generator.deconvs):
        deconv.weight.copy_(_tensor(arrays[f"c{i + 2}_w"].transpose(3, 2, 0, 1)))
        bias = deconv.bias if i == last else generator.norms[i + 1].bias
        bias.copy_(_tensor(arrays[f"c{i + 2}_b"]))
    if population:
        for i, norm in enumerate(generator.norms):
            norm.population_mean.copy_(_tensor(arrays[f"bnm_c{i + 1}_w"]))
            norm.population_var.copy_(_tensor(arrays[f"bnv_c{i + 1}_w"]))
            norm.population_count.fill_(FIXBN_BATCH)   # the original fixbn's one batch of 2048


def check_same_snapshot(g_arrays: dict, bg_arrays: dict, gmodel, bgmodel) -> None:
    """fixbn.py copies the weights of the .gmodel it read into the .bgmodel unchanged."""
    for name, array in g_arrays.items():
        if name in bg_arrays and not np.array_equal(array, bg_arrays[name]):
            raise CheckpointError(f"{bgmodel}: variable {name} differs from the one in {gmodel}; "
                                  "expected the .bgmodel that fixbn.py made from this .gmodel "
                                  "(same iteration)")


# ---- the discriminators -------------------------------------------------------------------------
def discriminator_variables(bank) -> dict[str, tuple]:
    """The original's variable names and TF shapes for our bank: c<k>_<j>_* (disc.py) or, for
    the single full-image D, c<j>_* (disc0.py)."""
    shapes = {}
    for k in range(bank.k):
        prefix = f"c{k}_" if bank.projected else "c"
        for j, layer in enumerate(bank.layers):
            shapes[f"{prefix}{j}_w"] = (layer.kernel, layer.kernel, layer.cin, layer.cout)
            shapes[f"{prefix}{j}_b"] = (layer.cout,)
    return shapes


def _not_discriminator_hint(bank):
    def hint(name: str) -> str:
        if name.startswith(("bnm_", "bnv_")):
            return ": a generator's statistic; pass this file as --bgmodel"
        if bank.projected and re.fullmatch(r"c\d+_[wb]", name):
            return (": a generator's or the single-discriminator baseline's variable (face1, "
                    "MODEL.D_TYPE full)")
        if not bank.projected and re.fullmatch(r"c\d+_\d+_[wb]", name):
            return ": a projected discriminator's variable (MODEL.D_TYPE projected)"
        return ""
    return hint


@torch.no_grad()
def load_discriminators(bank, arrays: dict, path, keys: str = ", ".join(D_KEYS)) -> None:
    """Copy the original's K discriminators into the bank; block k of layer j's parameter
    [K, kh * kw * C_in, C_out] is D_k's TF filter [kh, kw, C_in, C_out], flattened."""
    check_variables(arrays, discriminator_variables(bank), path, "discriminator variables",
                    keys, _not_discriminator_hint(bank))
    for k in range(bank.k):
        prefix = f"c{k}_" if bank.projected else "c"
        for j, layer in enumerate(bank.layers):
            w = arrays[f"{prefix}{j}_w"].reshape(-1, layer.cout)
            bank.weights[j][k].copy_(_tensor(w))
            bank.biases[j][k].copy_(_tensor(arrays[f"{prefix}{j}_b"]))


# ---- the run directory --------------------------------------------------------------------------
def _source(path: Path) -> dict:
    return {"file": str(path), "sha256": sha256(path), "iteration": iteration_of(path)}


def import_run(cfg, out: str | Path, gmodel=None, bgmodel=None, dmodel=None,
               filters=None, argv: list[str] | None = None) -> tuple[Path, dict]:
    """Write `out` as a run directory (config.yml, checkpoints/last.pt) holding the original's
    networks; return the checkpoint's path and counters. Optimizer states are fresh; the
    counters stand at the iteration in the generator file's name (0 if it has none). Without
    `dmodel` the discriminators are freshly initialised, as the original's train.py did when it
    found no D file."""
    from common import checkpoint
    from common.cli import seed_everything
    from common.train import write_run_files
    from rpgan.trainer import build

    out = Path(out)
    latest = checkpoint.find_latest(out)
    if latest is not None:
        raise CheckpointError(f"{out}: already holds a run ({latest}); choose another --out")
    if gmodel is None and bgmodel is None:
        raise UserError("--gmodel: give the generator file iter_<n>.gmodel.npz (or its "
                        "iter_<n>.bgmodel.npz)")
    projected = cfg.MODEL.D_TYPE == "projected"
    if filters is not None:
        if not projected:
            raise ConfigError("--filters: this config's discriminator sees the full image "
                              "(MODEL.D_TYPE full, the face1 baseline) and uses no projections",
                              "MODEL.D_TYPE")
        cfg.PROJ.FILTERS = str(Path(filters).expanduser().resolve())
    if dmodel is not None and projected and not cfg.PROJ.FILTERS:
        raise UserError(f"--dmodel {dmodel}: its discriminators only make sense with the "
                        "projections they were trained on; pass the run's filts.npz as "
                        "--filters (or set PROJ.FILTERS)")
    files = {"gmodel": gmodel, "bgmodel": bgmodel, "dmodel": dmodel}
    paths = {k: Path(v).expanduser() for k, v in files.items() if v is not None}
    arrays = {k: read_npz(p, f"original {k} file") for k, p in paths.items()}

    seed_everything(cfg.RUN.SEED)
    trainer = build(cfg, torch.device("cpu"))
    trainer.start_fresh()   # PROJ.FILTERS, checked against PROJ.K, SIZE, STRIDE, CHANNELS
    generator, g_keys = trainer.nets["G"], describe(cfg, G_KEYS)
    if "gmodel" in arrays:
        load_generator(generator, arrays["gmodel"], paths["gmodel"], False, g_keys)
    if "bgmodel" in arrays:   # the same weights plus the statistics
        if "gmodel" in arrays:
            check_same_snapshot(arrays["gmodel"], arrays["bgmodel"], paths["gmodel"],
                                paths["bgmodel"])
        load_generator(generator, arrays["bgmodel"], paths["bgmodel"], True, g_keys)
    if "dmodel" in arrays:
        load_discriminators(trainer.nets["D"], arrays["dmodel"], paths["dmodel"],
                            describe(cfg, D_KEYS))

    iteration = iteration_of(paths.get("gmodel", paths.get("bgmodel"))) or 0
    counters = {"iteration": iteration, "nimg": iteration * trainer.batch_size}
    state = checkpoint.capture(trainer, counters)
    sources = {k: _source(p) for k, p in paths.items()}
    state["extra"]["imported"] = {"from": "ayanc/rpgan (TensorFlow npz)", **sources}
    if "bgmodel" in sources:
        state["extra"]["population_bn"] = {"n": FIXBN_BATCH, "file": sources["bgmodel"]["file"]}
    write_run_files(cfg, out, argv)
    return checkpoint.save(state, out / "checkpoints" / "last.pt"), counters

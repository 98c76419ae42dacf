"""The original's released models: random weights saved in ayanc/rpgan's npz layout are imported
with scripts/import_weights.py, and our images and logits must equal those of the original TF
graph (re-implemented in numpy, tests/rpgan/tf_graph.py)."""
import runpy

import numpy as np
import pytest
import torch

from common import checkpoint, models
from common.cli import train_main
from common.errors import CheckpointError, UserError
from rpgan import sampling
from rpgan import trainer as rp
from rpgan.import_tf import import_run, iteration_of
from rpgan.trainer import load_generator
from tests.rpgan import tf_graph

# (config, overrides, zlen, G width, image size): the face and the dog generator at tiny width
EXPS = {
    "face": ("rpgan_face48.yml", ["MODEL.G_WIDTH=32", "MODEL.D_WIDTH=4", "PROJ.K=3"], 100, 32, 64),
    "dog": ("rpgan_dog12.yml", ["MODEL.G_WIDTH=64", "MODEL.D_WIDTH=2", "PROJ.K=2"], 200, 64, 128),
}
TOL = 1e-5   # float32 against float32


def config(repo, name, *overrides):
    return models.load_config(rp, repo / "cfg" / name, list(overrides))


def save(path, **arrays):
    np.savez(path, **arrays)
    return path


def latents(rng, n, zlen):
    return (rng.rand(n, zlen) * 2 - 1).astype(np.float32)


def tf_images(variables, z, size, population=False):
    """The numpy TF graph's images as NCHW."""
    return tf_graph.generator(variables, z[:, None, None, :], size, population).transpose(0, 3,
                                                                                          1, 2)


def fixbn(variables, z, size):
    """The original fixbn.py: G's variables plus the statistics of one batch."""
    stats = {}
    tf_graph.generator(variables, z[:, None, None, :], size, record=stats)
    return {**variables, **stats}


def filters_npz(path, k, rng):
    """A filts.npz in the original's layout (rproj.py: unit-norm 8x8x3x1 filters, stride 2)."""
    arrays = {"nfilt": np.int64(k)}
    for i in range(k):
        f = rng.standard_normal((8, 8, 3, 1)).astype(np.float32)
        arrays[f"p{i}"], arrays[f"s{i}"] = f / np.sqrt((f ** 2).sum()), np.int64(2)
    return save(path, **arrays), [arrays[f"p{i}"] for i in range(k)]


def projected_variables(k, size, df, rng):
    shapes = {}
    for i in range(k):
        shapes.update(tf_graph.discriminator_shapes(size // 2, 1, df, f"c{i}_"))
    return tf_graph.random_variables(shapes, rng)


@pytest.mark.parametrize("exp", sorted(EXPS))
def test_generator_equals_the_tf_graph(exp, repo, tmp_path):
    name, overrides, zlen, width, size = EXPS[exp]
    rng = np.random.RandomState(1)
    v = tf_graph.random_generator(zlen, width, size, rng)
    bg = fixbn(v, latents(rng, 64, zlen), size)
    gfile = save(tmp_path / "iter_1200.gmodel.npz", **v)
    bgfile = save(tmp_path / "iter_1200.bgmodel.npz", **bg)
    _, counters = import_run(config(repo, name, *overrides), tmp_path / "run", gfile, bgfile)
    assert counters["iteration"] == 1200
    generator, state, _ = load_generator(tmp_path / "run")
    assert state["extra"]["imported"]["gmodel"]["iteration"] == 1200
    z = latents(rng, 6, zlen)
    # sample.py: batch statistics (gen.py)
    got = sampling.render(generator, torch.from_numpy(z)).numpy()
    want = tf_images(v, z, size)
    assert got.shape == want.shape == (6, 3, size, size)
    assert np.abs(got - want).max() < TOL
    assert want.std() > 0.1   # not a degenerate picture
    # interp.py: the stored population statistics (genx.py from the .bgmodel)
    got = sampling.render(generator, torch.from_numpy(z), population=True).numpy()
    want_pop = tf_images(bg, z, size, population=True)
    assert np.abs(got - want_pop).max() < TOL
    assert np.abs(want_pop - want).max() > 1e-2   # the two BN modes differ here


@pytest.mark.parametrize("exp", sorted(EXPS))
def test_a_plain_copy_of_the_first_layer_gives_other_images(exp, repo, tmp_path):
    """c1_w's columns are (h, w, c) ordered by the TF reshape; ours are (c, h, w). Copying the
    matrix without permuting them must not reproduce the original."""
    name, overrides, zlen, width, size = EXPS[exp]
    rng = np.random.RandomState(2)
    v = tf_graph.random_generator(zlen, width, size, rng)
    import_run(config(repo, name, *overrides), tmp_path / "run",
               save(tmp_path / "g.gmodel.npz", **v))
    generator, _, _ = load_generator(tmp_path / "run")
    z = latents(rng, 6, zlen)
    want = tf_images(v, z, size)
    assert np.abs(sampling.render(generator, torch.from_numpy(z)).numpy() - want).max() < TOL
    with torch.no_grad():
        generator.fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(v["c1_w"][0, 0].T)))
    plain = sampling.render(generator, torch.from_numpy(z)).numpy()
    assert np.abs(plain - want).max() > 0.1


@pytest.mark.parametrize("exp", sorted(EXPS))
def test_projected_discriminators_equal_the_tf_graph(exp, repo, tmp_path):
    name, overrides, zlen, width, size = EXPS[exp]
    cfg = config(repo, name, *overrides)
    k, df = cfg.PROJ.K, cfg.MODEL.D_WIDTH
    rng = np.random.RandomState(3)
    gfile = save(tmp_path / "iter_5.gmodel.npz", **tf_graph.random_generator(zlen, width, size,
                                                                            rng))
    d = projected_variables(k, size, df, rng)
    dfile = save(tmp_path / "iter_5.dmodel.npz", **d)
    ffile, filts = filters_npz(tmp_path / "filts.npz", k, rng)
    import_run(cfg, tmp_path / "run", gfile, dmodel=dfile, filters=ffile)
    trainer, state = checkpoint.load_trainer(tmp_path / "run")
    assert state["extra"]["filters_source"]["file"] == str(ffile.resolve())
    x = rng.uniform(-1, 1, (4, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        got = trainer.nets["D"](torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    want = np.stack([tf_graph.projected_discriminator(d, i, x, filts[i], 2) for i in range(k)], 1)
    assert got.shape == (4, k)
    assert np.abs(got - want).max() < TOL
    assert np.abs(want[:, 0] - want[:, 1]).max() > 1e-3   # K different networks


def test_the_single_discriminator_baseline_equals_the_tf_graph(repo, tmp_path):
    cfg = config(repo, "rpgan_face1.yml", "MODEL.G_WIDTH=32", "MODEL.D_WIDTH=4")
    rng = np.random.RandomState(4)
    gfile = save(tmp_path / "iter_40000.gmodel.npz", **tf_graph.random_generator(100, 32, 64,
                                                                                rng))
    d = tf_graph.random_variables(tf_graph.discriminator_shapes(64, 3, 4, "c"), rng)
    import_run(cfg, tmp_path / "run", gfile, dmodel=save(tmp_path / "iter_40000.dmodel.npz", **d))
    trainer, state = checkpoint.load_trainer(tmp_path / "run")
    assert state["counters"]["iteration"] == 40000
    x = rng.uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        got = trainer.nets["D"](torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert np.abs(got[:, 0] - tf_graph.full_discriminator(d, x)).max() < TOL


def test_iteration_is_read_from_the_name_as_the_original():
    assert iteration_of("models/face48/iter_40000.gmodel.npz") == 40000
    assert iteration_of("/x/iter_0.bgmodel.npz") == 0
    assert iteration_of("g.npz") is None


# ---- bad files: one error that names the variable ---------------------------------------------
@pytest.fixture
def face(repo, tmp_path):
    """A fresh face config each time (an import may set its PROJ.FILTERS), G variables, rng."""
    name, overrides = EXPS["face"][:2]
    rng = np.random.RandomState(5)
    return (lambda: config(repo, name, *overrides)), tf_graph.random_generator(100, 32, 64,
                                                                                rng), rng


def expect_error(match, cfg, tmp_path, *files, **named):
    with pytest.raises((CheckpointError, UserError), match=match):
        import_run(cfg, tmp_path / "bad", *files, **named)
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_shapes_and_names_that_do_not_fit_the_config(face, tmp_path):
    cfg, v, rng = face
    wide = tf_graph.random_generator(100, 64, 64, rng)
    expect_error(r"g.npz: variable c1_w has shape \[1, 1, 100, 1024\]; the generator variables "
                 r"of this config \(DATA.IMAGE_SIZE=64, MODEL.Z_DIM=100, MODEL.G_WIDTH=32\) need "
                 r"\[1, 1, 100, 512\]", cfg(), tmp_path, save(tmp_path / "g.npz", **wide))
    missing = {k: a for k, a in v.items() if k != "c3_b"}
    expect_error("has no variable c3_b", cfg(), tmp_path, save(tmp_path / "m.npz", **missing))
    bg = fixbn(v, latents(rng, 16, 100), 64)
    expect_error("variable bnm_c1_w is not one of .*pass this file as --bgmodel", cfg(), tmp_path,
                 save(tmp_path / "b.npz", **bg))
    expect_error("has no variable bnm_c1_w", cfg(), tmp_path, None,
                 save(tmp_path / "g2.npz", **v))
    other = fixbn(tf_graph.random_generator(100, 32, 64, rng), latents(rng, 16, 100), 64)
    expect_error("b2.npz: variable c1_w differs from the one in .*g3.npz", cfg(), tmp_path,
                 save(tmp_path / "g3.npz", **v), save(tmp_path / "b2.npz", **other))
    (tmp_path / "junk.npz").write_text("not a zip")
    expect_error("junk.npz: not a readable original gmodel file", cfg(), tmp_path,
                 tmp_path / "junk.npz")
    expect_error("nothing.npz: original gmodel file not found", cfg(), tmp_path,
                 tmp_path / "nothing.npz")


def test_discriminators_that_do_not_fit_the_config(face, tmp_path):
    cfg, v, rng = face
    gfile = save(tmp_path / "g.npz", **v)
    ffile, _ = filters_npz(tmp_path / "filts.npz", 3, rng)
    four = save(tmp_path / "d4.npz", **projected_variables(4, 64, 4, rng))
    expect_error(r"d4.npz: variable c3_0_w is not one of the discriminator variables of this "
                 r"config \(MODEL.D_TYPE=projected, PROJ.K=3", cfg(), tmp_path, gfile,
                 dmodel=four, filters=ffile)
    d3 = save(tmp_path / "d3.npz", **projected_variables(3, 64, 4, rng))
    expect_error("--dmodel .*d3.npz: .* pass the run's filts.npz as --filters", cfg(), tmp_path,
                 gfile, dmodel=d3)
    expect_error("variable c0_0_w is not one of the generator variables.*--dmodel", cfg(),
                 tmp_path, d3)
    ffile4, _ = filters_npz(tmp_path / "K4.npz", 4, rng)
    with pytest.raises(UserError, match="K4.npz: holds 4 filters"):
        import_run(cfg(), tmp_path / "bad", gfile, dmodel=d3, filters=ffile4)


def test_the_command_line_errors_are_one_line(repo, tmp_path, capsys):
    script = runpy.run_path(str(repo / "scripts" / "import_weights.py"), run_name="import")
    assert script["main"](["stackgan", "--cfg", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no importer for model 'stackgan'" in err
    assert err.count("\n") == 1
    assert script["main"](["rpgan", "--cfg", str(repo / "cfg" / "rpgan_face1.yml"), "--gmodel",
                           str(tmp_path / "none.npz"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'none.npz'}: original gmodel file not found\n"


# ---- the imported run works with every tool ---------------------------------------------------
def test_import_then_sample_interp_fixbn_evaluate_and_resume(cli, repo, shared_data, tmp_path):
    faces = sorted((shared_data / "celeba" / "img_align_celeba").glob("*.jpg"))[:8]
    (tmp_path / "faces.txt").write_text("".join(f"{p}\n" for p in faces))
    rng = np.random.RandomState(6)
    v = tf_graph.random_generator(100, 32, 64, rng)
    bg = fixbn(v, latents(rng, 64, 100), 64)
    d = projected_variables(3, 64, 4, rng)
    files = {"gmodel": save(tmp_path / "iter_7.gmodel.npz", **v),
             "bgmodel": save(tmp_path / "iter_7.bgmodel.npz", **bg),
             "dmodel": save(tmp_path / "iter_7.dmodel.npz", **d)}
    ffile, _ = filters_npz(tmp_path / "filts.npz", 3, rng)
    tiny = ["MODEL.G_WIDTH=32", "MODEL.D_WIDTH=4", "PROJ.K=3", "TRAIN.BATCH_SIZE=4",
            f"DATA.ROOT={tmp_path / 'faces.txt'}", "RUN.WORKERS=0", "RUN.LOG_EVERY=1",
            "RUN.PROGRESS=lines"]
    args = [a for k, f in files.items() for a in (f"--{k}", f)]
    out = cli([repo / "scripts/import_weights.py", "rpgan", "--cfg", repo / "cfg/rpgan_face12.yml",
               *args, tiny[0], "--filters", ffile, "--out", "run", *tiny[1:]], tmp_path).stdout
    assert "iteration 7" in out
    run = tmp_path / "run"
    assert (run / "config.yml").is_file() and (run / "checkpoints" / "last.pt").is_file()

    scripts = {n: runpy.run_path(str(repo / "scripts" / f"{n}.py"), run_name=n)["main"]
               for n in ("sample", "rpgan_interp", "rpgan_fixbn")}
    assert scripts["sample"]([str(run), str(tmp_path / "grid.png"), "--bn", "population"]) == 0
    assert scripts["rpgan_interp"]([str(run), str(tmp_path / "interp.png"), "1,150"]) == 0
    generator, _, _ = load_generator(run)
    z = sampling.noise_pool(0, 5, 100)
    want = tf_images(bg, z.numpy(), 64, population=True)
    assert np.abs(sampling.render(generator, z, population=True).numpy() - want).max() < TOL
    trainer, _ = checkpoint.load_trainer(run)    # what scripts/evaluate.py loads
    assert trainer.generate(4).shape == (4, 3, 64, 64)
    from argparse import Namespace
    from rpgan.trainer import sample          # --bgmodel: sample.py's default uses the statistics
    default = sample(trainer, Namespace(n=5, seed=0, nrow=5, bn="auto"))["samples"][0]
    assert torch.equal(default, trainer.generate(5, 0, population=True))
    assert not torch.equal(default, trainer.generate(5, 0, population=False))
    assert scripts["rpgan_fixbn"]([str(run), "--n", "32", "--out", str(tmp_path / "fixed.pt")]) == 0

    before = checkpoint.load(run / "checkpoints" / "last.pt")
    assert train_main("rpgan", ["--cfg", str(run / "config.yml"), "--out", str(run), "--resume",
                                "auto", "--max-iters", "8", "--device", "cpu"]) == 0
    after = checkpoint.load(run / "checkpoints" / "last.pt")
    assert after["counters"]["iteration"] == 8
    assert torch.equal(after["nets"]["D"]["filters"], before["nets"]["D"]["filters"])
    for net in ("G", "D"):
        moved = [not torch.equal(a, after["nets"][net][k])
                 for k, a in before["nets"][net].items() if a.is_floating_point()]
        assert any(moved), f"{net} did not train on"

"""The originals' released `.pth` generators, as they were written (PyTorch 0.x/1.x): the legacy
(non-zip) torch serialization, and for StackGAN-v2 the DataParallel `module.` key prefix. Both
readers must take them with weights_only=True."""
import torch

from stackgan.v1 import networks as v1
from stackgan.v1 import weights as v1_weights
from stackgan.v2 import networks as v2
from stackgan.v2 import weights as v2_weights


def legacy_save(state: dict, path, prefix: str = "") -> None:
    torch.save({prefix + k: v for k, v in state.items()}, path,
               _use_new_zipfile_serialization=False)


def assert_same(module: torch.nn.Module, state: dict) -> None:
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_a_legacy_v2_generator_with_data_parallel_keys(tmp_path):
    torch.manual_seed(0)
    original = v2.TreeGenerator(2, 4, 6, 4, 8, 1, True)
    path = tmp_path / "netG_210000.pth"
    legacy_save(original.state_dict(), path, prefix="module.")
    assert not path.read_bytes().startswith(b"PK")   # not a zip archive: the old format
    tensors, iteration = v2_weights.generator_weights(path)
    assert iteration == 210000 and not any(k.startswith("module.") for k in tensors)
    torch.manual_seed(1)
    fresh = v2.TreeGenerator(2, 4, 6, 4, 8, 1, True)
    fresh.load_state_dict(tensors, strict=True)
    assert_same(fresh, original.state_dict())


def test_a_legacy_v1_stage2_file_as_net_g_and_stage1_g(tmp_path):
    torch.manual_seed(0)
    original = v1.Stage2G(v1.Stage1G(10, 6, 32, 4), 8, 6, 32, 2)
    path = tmp_path / "netG_epoch_90.pth"
    legacy_save(original.state_dict(), path, prefix="module.")
    state = v1_weights.load_state(path, "G", "NET_G")
    torch.manual_seed(1)
    fresh = v1.Stage2G(v1.Stage1G(10, 6, 32, 4), 8, 6, 32, 2)
    v1_weights.load_into(fresh, state, path, "NET_G")
    assert_same(fresh, original.state_dict())
    stage1 = v1.Stage1G(10, 6, 32, 4)
    v1_weights.load_into(stage1, v1_weights.stage1_part(state), path, "STAGE1_G")
    assert_same(stage1, original.STAGE1_G.state_dict())

"""torch.compile(fullgraph=True) through the public function and the compiled op."""
import importlib

import pytest
import torch

from common.ops import stnm, stnm_ref

from . import stnm_cases as cases


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


class RecordingBackend:
    """Runs the Dynamo graph eagerly through AOTAutograd and records its ops."""

    def __init__(self):
        self.targets = []

    def __call__(self, gm, example_inputs):
        self.targets += [node.target for node in gm.graph.nodes if node.op == "call_function"]
        return torch._dynamo.lookup_backend("aot_eager")(gm, example_inputs)


def test_decision_marker_matches_the_public_api():
    """stnm.py sets assume_constant_result's marker itself to avoid importing dynamo."""
    marked = torch.compiler.assume_constant_result(lambda: None)
    assert getattr(marked, "_dynamo_marked_constant", False)
    stnm_module = importlib.import_module("common.ops.stnm")  # the attribute is the function
    assert getattr(stnm_module._use_ext, "_dynamo_marked_constant", False)


def _loss(impl, mask_grad="full"):
    def loss(canvas, fg, mask, theta):
        return stnm(canvas, fg, mask, theta, impl=impl, mask_grad=mask_grad).square().sum()

    return loss


@pytest.mark.parametrize("mask_grad", ["full", "original"])
def test_ext_compiles_fullgraph_with_the_op_in_the_graph(mask_grad):
    cases.require_ext()
    inputs = cases.make_inputs(dtype=torch.float32, theta=cases.PARTLY_OFF)
    backend = RecordingBackend()
    compiled = torch.compile(_loss("ext", mask_grad), backend=backend, fullgraph=True)
    _, got = cases.grads(compiled, inputs)
    _, expected = cases.grads(lambda *t: stnm_ref(*t, mask_grad=mask_grad).square().sum(), inputs)
    assert torch.ops.ganrepro.stnm.default in backend.targets
    for name, a, e in zip(("canvas", "fg", "mask", "theta"), got, expected):
        cases.assert_close(a, e, torch.float32, f"d{name}", scale=10.0)


def test_ext_compiles_with_inductor():
    cases.require_ext()
    inputs = cases.make_inputs(dtype=torch.float32)
    compiled = torch.compile(_loss("ext"), fullgraph=True)
    _, got = cases.grads(compiled, inputs)
    _, expected = cases.grads(_loss("ref"), inputs)
    for name, a, e in zip(("canvas", "fg", "mask", "theta"), got, expected):
        cases.assert_close(a, e, torch.float32, f"d{name}", scale=10.0)


def test_env_override_is_honoured_when_compiling(monkeypatch):
    monkeypatch.setenv("GANREPRO_OPS", "ref")
    backend = RecordingBackend()
    torch.compile(_loss("auto"), backend=backend, fullgraph=True)(*cases.make_inputs(dtype=torch.float32))
    names = [str(t) for t in backend.targets]
    assert not any("ganrepro" in n for n in names)
    assert any("grid_sample" in n for n in names)

"""`ConvReLUSequential`: conv + ReLU as one oneDNN primitive when nothing can tell."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlforge.models import conv_relu
from dlforge.models.conv_relu import ConvReLUSequential
from dlforge.models.max_pool import MaxPool2d

pytestmark = pytest.mark.skipif(not conv_relu._available(), reason="torch without oneDNN")


def block() -> tuple[ConvReLUSequential, nn.Sequential]:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
              MaxPool2d(2), nn.ReLU()]
    fused = ConvReLUSequential(*layers)
    return fused, nn.Sequential(*layers)


@pytest.fixture
def fused_calls(monkeypatch):
    calls = []
    real = conv_relu._conv_relu
    monkeypatch.setattr(conv_relu, "_conv_relu", lambda c, x: calls.append(c) or real(c, x))
    return calls


@pytest.mark.parametrize("channels_last", [False, True])
def test_without_gradients_the_pair_is_fused_and_the_output_is_the_same(fused_calls, channels_last):
    fused, plain = block()
    x = torch.randn(16, 3, 12, 12)
    if channels_last:
        fused, x = fused.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out, ref = fused(x), plain(x)
    assert fused_calls == [fused[0]]  # only conv + ReLU; conv + pool is not a pair
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_state_dict_keys_are_nn_sequentials():
    fused, plain = block()
    assert list(fused.state_dict()) == list(plain.state_dict()) == [
        "0.weight", "0.bias", "2.weight", "2.bias"]


def test_gradients_autocast_hooks_and_other_dtypes_run_unfused(fused_calls):
    fused, _ = block()
    x = torch.randn(4, 3, 8, 8)
    fused(x)  # gradients on
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fused(x)
        fused.double()(x.double())
        fused.float()
        handle = fused[1].register_forward_hook(lambda *a: None)
        fused(x)
        handle.remove()
        handle = nn.modules.module.register_module_forward_hook(lambda *a: None)
        fused(x)
        handle.remove()
        assert fused_calls == []
        fused(x)
    assert fused_calls == [fused[0]]


def test_a_hook_on_the_block_sees_the_same_output_fused(fused_calls):
    fused, plain = block()
    seen = []
    fused.register_forward_hook(lambda _m, _i, out: seen.append(out))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        fused(x)
        ref = plain(x)
    assert len(fused_calls) == 1
    torch.testing.assert_close(seen[0], ref, atol=1e-6, rtol=1e-6)


def test_a_traced_graph_has_torchs_standard_ops(fused_calls):
    fused, _ = block()
    with torch.no_grad():
        traced = torch.jit.trace(fused.eval(), torch.randn(1, 3, 8, 8), check_trace=False)
    ops = [line.split(" = ")[1].split("(")[0] for line in str(traced.inlined_graph).splitlines()
           if " = aten::" in line or " = mkldnn::" in line]
    assert fused_calls == []
    assert ops == ["aten::_convolution", "aten::relu", "aten::_convolution", "aten::max_pool2d",
                   "aten::relu"]


def test_a_conv_subclass_is_not_fused_and_a_refusing_op_switches_fusion_off(
        fused_calls, monkeypatch, caplog):
    class Scaled(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    fused = ConvReLUSequential(Scaled(1, 2, 3), nn.ReLU())
    x = torch.randn(1, 1, 5, 5)
    with torch.no_grad():
        assert torch.equal(fused(x), torch.relu(fused[0](x)))
    assert fused_calls == []

    def refuse(*_args):
        raise RuntimeError("no such kernel on this CPU")
    monkeypatch.setattr(torch.ops.mkldnn, "_convolution_pointwise", refuse, raising=False)
    monkeypatch.setattr(conv_relu, "_broken", False)
    plain = ConvReLUSequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with torch.no_grad():
        out = plain(x)
        assert conv_relu._broken and torch.equal(out, torch.relu(plain[0](x)))
        plain(x)
    assert fused_calls == [plain[0]]  # tried once, then never again
    assert "fused conv+ReLU unavailable here (no such kernel on this CPU)" in caplog.text


def test_a_bad_input_raises_torchs_error_and_leaves_fusion_on(fused_calls, monkeypatch):
    monkeypatch.setattr(conv_relu, "_broken", False)
    fused, plain = block()
    with torch.no_grad():
        with pytest.raises(RuntimeError, match="expected input.* to have 3 channels"):
            fused(torch.randn(1, 1, 8, 8))
        assert conv_relu._broken is False
        unbatched = torch.randn(3, 8, 8)  # nn.Conv2d takes (C, H, W): not fused, same output
        assert torch.equal(fused(unbatched), plain(unbatched))
        fused(torch.randn(1, 3, 8, 8))
    assert fused_calls == [fused[0], fused[0]]  # the bad batch tried it; the 3-D input did not

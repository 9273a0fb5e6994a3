from __future__ import annotations

import pytest
import torch

from dlforge.config.schema import BasicCNNConfig, MobileNetConfig, TrainConfig
from dlforge.data.dataset import TaskSpec
from dlforge.data.loader import BatchLoader, Loaders
from dlforge.errors import ConfigError
from dlforge.models import build_model
from dlforge.train import precision as precision_mod
from dlforge.train.loop import fit
from dlforge.train.precision import resolve_precision, sample_shape

CPU = torch.device("cpu")


def cnn(side=16, cfg=None):
    torch.manual_seed(0)
    return build_model(cfg or BasicCNNConfig(filters=[4, 8], dense=16), input_shape=(1, side, side),
                       num_outputs=3)


@pytest.fixture
def native_bf16(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)


def test_explicit_settings_on_cpu():
    assert resolve_precision("fp32", cnn(), CPU, (1, 16, 16)).dtype is None
    bf16 = resolve_precision("bf16", cnn(), CPU, (1, 16, 16))
    assert (bf16.name, bf16.dtype, bf16.scaled) == ("bf16", torch.bfloat16, False)


def test_fp16_needs_cuda():
    with pytest.raises(ConfigError) as err:
        resolve_precision("fp16", cnn(), CPU, (1, 16, 16))
    assert str(err.value) == ("train.precision: 'fp16' needs a CUDA device (training on cpu); "
                              "use auto, bf16 or fp32")


@pytest.mark.parametrize(("model", "shape", "expected"), [
    (lambda: cnn(16), (1, 16, 16), "bf16"),      # a Basic CNN on images of 16 px and more
    (lambda: cnn(8), (1, 8, 8), "fp32"),         # small images: bfloat16 measured slower
    (lambda: cnn(16), None, "fp32"),             # unknown input shape
    (lambda: cnn(16, MobileNetConfig(width=0.25)), (1, 16, 16), "fp32"),  # depthwise convs
    (lambda: torch.nn.Linear(4, 2), (4,), "fp32"),
])
def test_auto_on_a_cpu_with_native_bf16(native_bf16, model, shape, expected):
    assert resolve_precision("auto", model(), CPU, shape).name == expected


def test_auto_without_native_bf16_is_fp32(monkeypatch):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cnn(32), CPU, (1, 32, 32)).name == "fp32"


def test_sample_shape_of_a_loader():
    loader = BatchLoader(torch.zeros(5, 1, 16, 16), torch.zeros(5), batch_size=2)
    assert sample_shape(loader) == (1, 16, 16)
    assert sample_shape([(torch.zeros(2, 3), torch.zeros(2))]) is None


def _fit_bf16(epochs, **kwargs):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(48, 1, 16, 16, generator=g)
    y = (x[:, 0, :8].mean((1, 2)) > x[:, 0, 8:].mean((1, 2))).long() + (x.mean((1, 2, 3)) > 0.5).long()
    loaders = Loaders(train=BatchLoader(x, y, batch_size=16, shuffle=True, seed=1),
                      val=BatchLoader(x, y, batch_size=48))
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=0.01, precision="bf16", early_stopping=None)
    return fit(cnn(), loaders, cfg, TaskSpec("multiclass", ("a", "b", "c")), seed=2, device="cpu",
               progress=False, **kwargs)


def _untimed(history):
    return [{k: v for k, v in row.items() if k not in ("epoch_time_s", "samples_per_s")}
            for row in history]


def test_bf16_training_is_deterministic_and_resumes_exactly(tmp_path):
    a, b = _fit_bf16(3), _fit_bf16(3)
    assert a.precision == "bf16"
    assert _untimed(a.history) == _untimed(b.history)
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(),
                                                 b.model.state_dict().values(), strict=True))
    assert all(p.dtype == torch.float32 for p in a.model.parameters())  # master weights stay fp32
    _fit_bf16(2, checkpoint_dir=tmp_path)
    resumed = _fit_bf16(3, checkpoint_dir=tmp_path, resume_from=tmp_path / "last.pt")
    assert _untimed(resumed.history) == _untimed(a.history)
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(),
                                                 resumed.model.state_dict().values(), strict=True))


def test_bf16_on_a_device_without_it_names_the_setting(monkeypatch):
    with pytest.raises(ConfigError) as err:
        resolve_precision("bf16", cnn(), torch.device("mps"), (1, 16, 16))
    assert str(err.value) == ("train.precision: 'bf16' is supported on cpu and cuda, not mps; "
                              "use auto or fp32")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ConfigError) as err:
        resolve_precision("bf16", cnn(), torch.device("cuda"), (1, 16, 16))
    assert str(err.value) == ("train.precision: 'bf16' is not supported by this GPU; use auto, "
                              "fp16 or fp32")

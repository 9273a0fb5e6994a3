"""A 2-epoch `fit` of a tiny Basic CNN on synthetic 8x8 images, for the kernel-switch tests.

The kernel-switch tests fit twice, through two kernels whose gradients differ by fp32 rounding
(about 1e-10 here), and compare the weights to 1e-5. By SGD a rounding difference moves a
weight by lr x that difference. Adam (the default optimizer) moves a weight by
lr x m / (sqrt(v) + eps): a rounding difference dg moves it by up to about
lr x dg / (sqrt(v) + eps) per step, so a weight whose running gradient scale sqrt(v) is near
eps (1e-8) moves by up to lr either way; a weight whose gradient is exactly 0 moves by exactly
0 in both fits. The data here (centred, three balanced classes) and the initialisation (seed
`MODEL_SEED`) leave no weight near-silenced: every running scale is 0 or at least
`ADAM_SCALE_FLOOR` = 100 x eps (`adam_scale_floor`, checked by test_tiny_fit.py), so the
Adam fits differ by at most lr x 1e-10 / 1e-6 = 1e-6 per step, 4e-6 over the 4 steps.
"""

from __future__ import annotations

import torch

MODEL_SEED = 4
ADAM_SCALE_FLOOR = 1e-6
ADAM_BETA2 = 0.999  # torch.optim.Adam's default, which train/optim.py keeps


def fit_tiny_cnn(gradients: list[dict[str, torch.Tensor]] | None = None, **train):
    """`fit` a [4, 8]-filter Basic CNN for 2 epochs (4 steps) in fp32 on CPU with `train`
    settings (`optimizer` default SGD); each step's gradients are appended to `gradients`
    (one {name: gradient} per step) when it is given."""
    from dlforge.config.schema import BasicCNNConfig, TrainConfig
    from dlforge.data.dataset import TaskSpec
    from dlforge.data.loader import BatchLoader, Loaders
    from dlforge.models import build_model
    from dlforge.train.loop import fit

    torch.manual_seed(MODEL_SEED)
    model = build_model(BasicCNNConfig(filters=[4, 8], dense=16), input_shape=(1, 8, 8), num_outputs=3)
    if gradients is not None:
        _record(model, gradients)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 8, 8, generator=g)
    y = x.mean((1, 2, 3)).argsort().argsort() * 3 // 32  # rank of the mean: 11, 11, 10 per class
    loaders = Loaders(train=BatchLoader(x, y, batch_size=16), val=BatchLoader(x, y, batch_size=32))
    train = {"optimizer": "sgd", **train}
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01, precision="fp32", early_stopping=None, **train)
    return fit(model, loaders, cfg, TaskSpec("multiclass", ("a", "b", "c")), seed=2, device="cpu",
               progress=False)


def _record(model: torch.nn.Module, gradients: list[dict[str, torch.Tensor]]) -> None:
    """Append each backward pass's parameter gradients to `gradients`, one dict per step."""
    params = dict(model.named_parameters())

    def keep(name: str, grad: torch.Tensor) -> None:
        if not gradients or name in gradients[-1]:
            gradients.append({})
        gradients[-1][name] = grad.detach().clone()

    for name, param in params.items():
        param.register_hook(lambda grad, name=name: keep(name, grad))


def adam_scale_floor(gradients: list[dict[str, torch.Tensor]]) -> float:
    """The smallest non-zero running gradient scale sqrt(v_hat) Adam divides by, over every
    weight and step of `gradients` (v_t = beta2 v_(t-1) + (1 - beta2) g^2, v_hat = v_t / (1 -
    beta2^t))."""
    floor = float("inf")
    for name in gradients[0]:
        v = torch.zeros_like(gradients[0][name])
        for t, step in enumerate(gradients, start=1):
            v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * step[name] ** 2
            scale = (v / (1 - ADAM_BETA2 ** t)).sqrt()
            if bool((scale > 0).any()):
                floor = min(floor, scale[scale > 0].min().item())
    return floor

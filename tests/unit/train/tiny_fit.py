"""A 2-epoch `fit` of a tiny Basic CNN on synthetic 8x8 images, for the kernel-switch tests."""

from __future__ import annotations

import torch


def fit_tiny_cnn(**train):
    """`fit` a [4, 8]-filter Basic CNN for 2 epochs in fp32 on CPU with `train` settings, by
    SGD unless `train` says otherwise: the kernel-switch tests compare two fits' weights, and
    Adam divides by sqrt(v), so a weight whose gradient is at rounding level (a channel the
    dropout masks silenced) moves by up to lr either way from a 1e-9 difference."""
    from dlforge.config.schema import BasicCNNConfig, TrainConfig
    from dlforge.data.dataset import TaskSpec
    from dlforge.data.loader import BatchLoader, Loaders
    from dlforge.models import build_model
    from dlforge.train.loop import fit

    torch.manual_seed(0)
    model = build_model(BasicCNNConfig(filters=[4, 8], dense=16), input_shape=(1, 8, 8), num_outputs=3)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) * 6).long().clamp(0, 2)
    loaders = Loaders(train=BatchLoader(x, y, batch_size=16), val=BatchLoader(x, y, batch_size=32))
    train = {"optimizer": "sgd", **train}
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01, precision="fp32", early_stopping=None, **train)
    return fit(model, loaders, cfg, TaskSpec("multiclass", ("a", "b", "c")), seed=2, device="cpu",
               progress=False)

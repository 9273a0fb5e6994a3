"""Text classifiers over int64 token ids ``(N, maxlen)``, id 0 being padding.

``text_pool`` is the classic IMDB model (embedding, average over the real tokens, one hidden
layer); ``text_cnn`` is Kim (2014): 1-D convolutions of several widths, max over time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dlforge.config.schema import TextCNNConfig, TextPoolConfig
from dlforge.errors import ConfigError

PAD = 0


class TextPool(nn.Module):
    """Embedding -> mean over non-pad tokens -> Linear(hidden) -> ReLU -> Dropout -> head."""

    family = "text"

    def __init__(self, vocab_size: int, num_outputs: int, *, embedding_dim: int = 16,
                 hidden: int = 16, dropout: float = 0.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.hidden = nn.Sequential(nn.Linear(embedding_dim, hidden), nn.ReLU(),
                                    nn.Dropout(dropout))
        self.head = nn.Linear(hidden, num_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != PAD).unsqueeze(-1).to(self.embedding.weight.dtype)
        summed = (self.embedding(tokens) * mask).sum(dim=1)
        # An all-padding text averages to the zero vector instead of dividing by zero.
        pooled = summed / mask.sum(dim=1).clamp(min=1.0)
        return self.head(self.hidden(pooled))


class TextCNN(nn.Module):
    """Embedding -> Conv1d per kernel size -> ReLU -> max over time -> concat -> Dropout -> head."""

    family = "text"

    def __init__(self, vocab_size: int, num_outputs: int, *, embedding_dim: int = 64,
                 filters: int = 64, kernel_sizes: Sequence[int] = (3, 4, 5),
                 dropout: float = 0.5) -> None:
        super().__init__()
        assert kernel_sizes, "build_text_cnn rejects an empty model.kernel_sizes"
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, filters, k) for k in kernel_sizes)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(filters * len(kernel_sizes), num_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens).transpose(1, 2)  # (N, embedding_dim, maxlen) for Conv1d
        pooled = [self.act(conv(x)).amax(dim=2) for conv in self.convs]
        return self.head(self.dropout(torch.cat(pooled, dim=1)))


def build_text_pool(cfg: TextPoolConfig, *, input_shape: tuple[int, ...], num_outputs: int,
                    vocab_size: int | None = None) -> TextPool:
    """Build a :class:`TextPool`; ``vocab_size`` is checked by the registry."""
    assert vocab_size is not None
    return TextPool(vocab_size, num_outputs, embedding_dim=cfg.embedding_dim,
                    hidden=cfg.hidden, dropout=cfg.dropout)


def build_text_cnn(cfg: TextCNNConfig, *, input_shape: tuple[int, ...], num_outputs: int,
                   vocab_size: int | None = None) -> TextCNN:
    """Build a :class:`TextCNN` for sequences of ``input_shape == (maxlen,)``.

    Raises:
        ConfigError: no kernel sizes, or a kernel is wider than the sequences.
    """
    assert vocab_size is not None
    if not cfg.kernel_sizes:
        raise ConfigError("model.kernel_sizes: needs at least one kernel size (got []). "
                          "Use e.g. [3, 4, 5].")
    maxlen = input_shape[0]
    too_wide = [k for k in cfg.kernel_sizes if k > maxlen]
    if too_wide:
        raise ConfigError(
            f"model.kernel_sizes: kernels {too_wide} are wider than the sequences "
            f"(maxlen {maxlen}). Use kernel sizes of at most {maxlen}, or a larger "
            f"preprocess.text.maxlen."
        )
    return TextCNN(vocab_size, num_outputs, embedding_dim=cfg.embedding_dim,
                   filters=cfg.filters, kernel_sizes=list(cfg.kernel_sizes),
                   dropout=cfg.dropout)

"""Texts: lowercase, tokenize, index with a vocabulary of the training split, pad/truncate."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from dlforge.config.schema import TextPreprocess
from dlforge.data.preprocess.base import Preprocessor
from dlforge.errors import DataError

PAD, START, UNK = 0, 1, 2
SPECIALS = ("<PAD>", "<START>", "<UNK>")
# Runs of letters, digits and underscores (Unicode-aware): "Don't stop!" -> don, t, stop.
TOKEN_RE = re.compile(r"\w+")


class TextPreprocessor(Preprocessor):
    """Token ids int64 `(N, maxlen)`: `[<START>] + ids`, padded with `<PAD>` at the end.

    Tokens are the matches of the regex ``\\w+`` after optional lowercasing. The vocabulary
    holds the `num_words` most frequent TRAINING tokens, ranked by count with ties broken by
    first appearance in the training texts, at ids 3, 4, ...; ids 0, 1 and 2 are `<PAD>`,
    `<START>` and `<UNK>` (any token outside the vocabulary). So `vocab_size` is at most
    `num_words + 3`. Sequences longer than `maxlen` lose their end (`truncate: post`) or their
    beginning (`truncate: pre`, which also drops `<START>`); shorter ones are padded with 0 at
    the end.

    Example:
        >>> pre = TextPreprocessor(TextPreprocess(maxlen=4)).fit(np.array(["a b b"]))
        >>> pre.transform(np.array(["b a c"])).tolist()
        [[1, 3, 4, 2]]
    """

    kind = "text"
    config_type = TextPreprocess

    def __init__(self, cfg: TextPreprocess) -> None:
        super().__init__(cfg)
        self.vocab: dict[str, int] = {}

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one text, as `fit` and `transform` see them."""
        return TOKEN_RE.findall(text.lower() if self.cfg.lowercase else text)

    def fit(self, x_raw: Any) -> TextPreprocessor:
        """Build the vocabulary from the training texts.

        Raises:
            DataError: no texts, or a sample that is not a string.
        """
        texts = _as_texts(x_raw)
        if not texts:
            raise DataError("input: expected at least one training text, got none")
        counts = Counter(tok for text in texts for tok in self.tokenize(text))
        # Counter keeps first-appearance order and most_common sorts stably by count.
        top = [tok for tok, _ in counts.most_common(self.cfg.num_words)]
        self.vocab = {name: i for i, name in enumerate(SPECIALS)}
        self.vocab.update({tok: i + len(SPECIALS) for i, tok in enumerate(top)})
        self.fitted = True
        return self

    def transform(self, x_raw: Any) -> np.ndarray:
        """Token ids of each text, int64 `(N, maxlen)`.

        Raises:
            DataError: a sample is not a string.
        """
        self._check_fitted()
        maxlen = self.cfg.maxlen
        texts = _as_texts(x_raw)
        out = np.zeros((len(texts), maxlen), dtype=np.int64)
        get = self.vocab.get
        for row, text in enumerate(texts):
            ids = [START] + [get(tok, UNK) for tok in self.tokenize(text)]
            ids = ids[-maxlen:] if self.cfg.truncate == "pre" else ids[:maxlen]
            out[row, :len(ids)] = ids
        return out

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.cfg.maxlen,)

    @property
    def vocab_size(self) -> int | None:
        self._check_fitted()
        return len(self.vocab)

    def _state(self) -> dict[str, Any]:
        # A list ordered by id: JSON objects do not promise key order to every reader.
        return {"tokens": sorted(self.vocab, key=self.vocab.__getitem__)}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.vocab = {tok: i for i, tok in enumerate(state["tokens"])}


def _as_texts(x_raw: Any) -> list[str]:
    """The samples as a list of str; missing values (None/NaN) become empty texts."""
    if isinstance(x_raw, str):
        raise DataError("input: expected a sequence of texts, got a single string; wrap it in a list")
    texts = []
    for i, value in enumerate(x_raw):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            value = ""
        if not isinstance(value, str):
            raise DataError(f"input: text {i} is {type(value).__name__} {value!r}, expected a string")
        texts.append(value)
    return texts

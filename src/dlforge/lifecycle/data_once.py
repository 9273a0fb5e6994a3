"""Each data set an update or a gate reads, loaded and split once.

An update reads the same data sets several times: its fresh data (the update's plan, then the
gate's set, the check that neither model trained on the gate rows, and the forgetting check)
and the data of its source, its champion and its lineage's first version (their splits,
rebuilt from their runs' configs). Within `reading_once()` (a `dlforge update` command, a
whole `--watch`, one gate), `load_once(cfg)` loads and splits each data set the first time
and hands back the same splits after that; outside it every call loads afresh, as
`data.prepare.load_and_split` does.

Data sets are told apart by what `load_and_split` reads of a config: the data section, the
seed and the preprocessing section (its checks of missing values), and by whether a model will
be trained on them (`training`: a class without training samples is refused only then). The last `KEEP` are kept,
enough for one update (fresh, source, champion and first version's data) and for the next
batch of a watch, whose source is usually the version the last batch made.
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING

from dlforge.data.prepare import load_and_split

if TYPE_CHECKING:
    from dlforge.config import RunConfig
    from dlforge.data.dataset import Dataset, Splits
    from dlforge.data.validate import ValidationReport

KEEP = 4
Loaded = tuple["Dataset", "Splits", "ValidationReport"]
_MEMO: ContextVar[OrderedDict[str, Loaded] | None] = ContextVar("dlforge_loaded_data", default=None)


@contextlib.contextmanager
def reading_once() -> Iterator[None]:
    """Within the block, `load_once` loads each data set once (a block inside another shares
    the outer one's data sets).

    Example:
        >>> with reading_once():  # doctest: +SKIP
        ...     load_once(cfg)[1] is load_once(cfg)[1]
        True
    """
    if _MEMO.get() is not None:
        yield
        return
    token = _MEMO.set(OrderedDict())
    try:
        yield
    finally:
        _MEMO.reset(token)


def load_once(cfg: RunConfig, *, training: bool = True) -> Loaded:
    """`load_and_split(cfg, training=training)`, from memory when this block already loaded
    the same data set the same way.

    Args:
        cfg: the config whose data is loaded.
        training: whether a model is trained on its training split; False for data that
            is only scored (a gate's or drift's held-out data).

    Returns:
        (dataset, splits, report); the report's warnings are a fresh list per call (callers
        add theirs), the data is shared: callers must not change it in place.

    Raises:
        DataError: the data cannot be used (nothing is kept then).
    """
    memo = _MEMO.get()
    if memo is None:
        return load_and_split(cfg, training=training)
    key = json.dumps({"data": cfg.data.model_dump(mode="json"), "seed": cfg.seed,
                      "preprocess": cfg.preprocess.model_dump(mode="json"), "training": training},
                     sort_keys=True)
    if key not in memo:
        memo[key] = load_and_split(cfg, training=training)
        while len(memo) > KEEP:
            memo.popitem(last=False)
    memo.move_to_end(key)
    dataset, splits, report = memo[key]
    return dataset, splits, replace(report, warnings=list(report.warnings))

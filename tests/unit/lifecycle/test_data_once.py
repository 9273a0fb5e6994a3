"""`data_once`: each data set loaded once within a block, afresh outside it, the last KEEP kept."""

from __future__ import annotations

from collections import Counter

import pytest

from dlforge.config import load_config
from dlforge.data.validate import ValidationReport
from dlforge.lifecycle import data_once
from dlforge.lifecycle.data_once import load_once, reading_once


@pytest.fixture
def loads(monkeypatch):
    """Calls of load_and_split by data.name (and `training`, when False); each returns fresh
    objects."""
    counted = Counter()

    def fake(cfg, *, training):
        counted[cfg.data.name + ("" if training else " scored")] += 1
        return object(), object(), ValidationReport("builtin", "multiclass", {}, {}, None,
                                                    warnings=["seen"])

    monkeypatch.setattr(data_once, "load_and_split", fake)
    return counted


def cfg(name: str, seed: int = 0):
    return load_config({"data": {"source": "builtin", "name": name}, "seed": seed})


def seeded(seed: int):
    return load_config({"data": {"source": "builtin", "name": "digits"}, "seed": seed})


def test_outside_a_block_every_call_loads(loads):
    load_once(cfg("digits"))
    load_once(cfg("digits"))
    assert loads == {"digits": 2}


def test_within_a_block_each_data_set_loads_once_and_nested_blocks_share(loads):
    with reading_once():
        first = load_once(cfg("digits"))
        with reading_once():
            again = load_once(cfg("digits"))
        other_seed = load_once(cfg("digits", seed=1))
    assert loads == {"digits": 2}  # seeds split differently: two data sets
    assert again[:2] == first[:2] and other_seed[1] is not first[1]
    again[2].warnings.append("mine")  # a caller's warning stays its own
    assert first[2].warnings == ["seen"] and again[2] is not first[2]


def test_the_oldest_data_set_is_dropped_beyond_keep(loads):
    names = ["digits", "wine", "diabetes", "breast_cancer"]
    assert data_once.KEEP == len(names)
    with reading_once():
        for name in [*names, "digits"]:
            load_once(cfg(name))
        load_once(seeded(1))  # a fifth data set
        for name in ["wine", "digits"]:
            load_once(cfg(name))
    # digits was used again before the fifth came, so wine (the oldest) went and is read again
    assert loads == {"digits": 2, "wine": 2, "diabetes": 1, "breast_cancer": 1}


def test_data_loaded_for_scoring_is_another_data_set_than_for_training(loads):
    with reading_once():
        scored = load_once(cfg("digits"), training=False)
        trained = load_once(cfg("digits"))
        assert load_once(cfg("digits"), training=False)[1] is scored[1]
        assert load_once(cfg("digits"))[1] is trained[1]
    assert trained[1] is not scored[1]
    assert loads == {"digits": 1, "digits scored": 1}
    load_once(cfg("wine"), training=False)  # outside a block too
    assert loads["wine scored"] == 1

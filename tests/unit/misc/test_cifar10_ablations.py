"""benchmarks/cifar10_recipe.py --ablate: each recipe retrains only for the ingredients it
has (configs only: nothing is trained or read)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SGD_ONLY = ["lookahead"]
MUON_ONLY = ["Muon (SGD instead)", "Muon weight normalization"]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import cifar10_recipe

    return cifar10_recipe


def test_each_recipe_is_ablated_for_the_ingredients_it_has(bench, tmp_path):
    npz = tmp_path / "never-read.npz"
    shared = [name for name in bench.ABLATIONS if name not in SGD_ONLY + MUON_ONLY]
    assert len(shared) == 8
    assert list(bench.ablations(npz, [])) == shared[:1] + SGD_ONLY + shared[1:]
    muon = bench.ablations(npz, [], ROOT / "examples" / "cifar10_muon.yaml")
    assert list(muon) == shared + MUON_ONLY
    assert muon["Muon (SGD instead)"] == ["train.optimizer=sgd", "train.muon=null"]
    off = bench.recipe(npz, muon["Muon (SGD instead)"], ROOT / "examples" / "cifar10_muon.yaml")
    assert (off.train.optimizer, off.train.muon, off.train.lr) == ("sgd", None, 1.65618896)


def test_an_ingredient_the_overrides_already_switched_off_is_not_retrained(bench, tmp_path):
    npz = tmp_path / "never-read.npz"
    names = list(bench.ablations(npz, ["train.ema=null", "train.label_smoothing=0"]))
    assert "lookahead" not in names and "label smoothing" not in names
    assert len(names) == len(bench.ABLATIONS) - len(MUON_ONLY) - 2

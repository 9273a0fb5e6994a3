"""`dlforge serve --model M` with a damaged bundle: one line and exit 1 before uvicorn starts
(it printed uvicorn's start-up traceback); the bundle is left as it is."""

from __future__ import annotations

import pytest

from dlforge.cli import main
from dlforge.config.schema import MLPConfig
from dlforge.registry import Store
from dlforge.registry.bundle import check_bundle


@pytest.fixture
def bundle(tmp_path):
    from tests.unit.export.export_models import register

    ws = register(tmp_path / "ws", "m", MLPConfig(hidden=[4]))
    with Store.open(ws) as store:
        return ws, store.resolve("m").bundle_path


def _never_serve(monkeypatch):
    import dlforge.cli.listen as listen

    def fail(*args, **kwargs):
        raise AssertionError("uvicorn must not start with a damaged bundle")

    monkeypatch.setattr(listen, "run_uvicorn", fail)
    monkeypatch.setattr(listen, "bind_listeners", fail)


def test_a_sound_bundle_passes_the_check(bundle):
    check_bundle(bundle[1])


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: (b / "weights.safetensors").write_bytes(b"\x00" * 100),
     "weights.safetensors is not a readable safetensors file (Error while deserializing header: "
     "invalid JSON in header: EOF while parsing a value at line 1 column 0); re-register the model"),
    (lambda b: (b / "weights.safetensors").unlink(),
     "weights.safetensors is missing; the bundle is incomplete, re-register the model"),
    (lambda b: (b / "task.json").write_text("{"),
     "task.json is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
     "column 2 (char 1)); re-register the model"),
])
def test_serve_refuses_a_damaged_bundle_in_one_line(bundle, monkeypatch, capsys, damage, message):
    ws, path = bundle
    damage(path)
    before = sorted((p.name, p.read_bytes()) for p in path.iterdir())
    _never_serve(monkeypatch)
    assert main(["-w", str(ws), "serve", "--model", "m"]) == 1
    assert capsys.readouterr().err == f"error: bundle: {path}/{message}\n"
    assert sorted((p.name, p.read_bytes()) for p in path.iterdir()) == before

"""A model the command cannot use (a GAN to predict with, a classifier to generate with) is
refused in one line with exit 2, before any input or data is read."""

from __future__ import annotations

import pytest
import yaml

from dlforge.cli import main
from dlforge.config.schema import DCGANConfig, MLPConfig

GAN_LINE = ("error: model: gan@1 is a GAN (model.type dcgan): it generates images "
            "(`dlforge generate`) and predicts nothing\n")
GAN_IS = "gan@1 is a GAN (model.type dcgan): it generates images and predicts nothing; "
UPDATE_FIX = ("update a model that predicts (a classifier, a regressor or an anomaly detector: "
              "`dlforge models list` shows each model's type); a GAN learns new data by training "
              "again (`dlforge run`)")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from tests.unit.export.export_models import register

    ws = tmp_path_factory.mktemp("kinds") / "ws"
    register(ws, "gan", DCGANConfig(width=4, latent_dim=4))
    register(ws, "mlp", MLPConfig(hidden=[4]))
    return ws


def test_predict_refuses_a_gan_before_reading_its_inputs(workspace, tmp_path, capsys):
    """It exited 1, and only once the first batch of inputs had been read."""
    code = main(["-w", str(workspace), "predict", "gan@1", str(tmp_path / "missing.png"),
                 "-o", str(tmp_path / "out.csv")])
    assert (code, capsys.readouterr().err) == (2, GAN_LINE)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_refuses_a_gan_before_reading_the_data(workspace, tmp_path, capsys, monkeypatch):
    """It exited 1, after loading and splitting the whole data set."""
    from dlforge.data import prepare

    config = tmp_path / "digits.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": "builtin", "name": "digits"}}))
    monkeypatch.setattr(prepare, "load_and_split", lambda *a, **k: pytest.fail("read the data"))
    code = main(["-w", str(workspace), "evaluate", "gan@1", "--data", str(config)])
    assert (code, capsys.readouterr().err) == (2, GAN_LINE)


def test_generate_refuses_a_classifier_with_the_same_code(workspace, tmp_path, capsys):
    code = main(["-w", str(workspace), "generate", "mlp@1", "-o", str(tmp_path / "g.png")])
    assert (code, capsys.readouterr().err) == (
        2, "error: model: mlp@1 is not a GAN (model.type dcgan), so it generates no images; "
           "use `dlforge predict` for it\n")
    assert list(tmp_path.iterdir()) == []


def test_generate_into_a_directory_is_refused_before_generating(workspace, tmp_path, capsys):
    (tmp_path / "g.png").mkdir()  # was "internal error: IsADirectoryError" once generated
    code = main(["-w", str(workspace), "generate", "gan@1", "-o", str(tmp_path / "g.png")])
    assert (code, capsys.readouterr().err) == (
        2, f"error: --output: {str(tmp_path / 'g.png')!r} is a directory; give the path of a file "
           "to write, such as grid.png\n")
    assert list((tmp_path / "g.png").iterdir()) == []


def test_promote_refuses_a_gan_before_reading_the_gate_set(workspace, capsys, monkeypatch):
    """It read the whole gate set, then refused when scoring it."""
    from dlforge.lifecycle import promote

    monkeypatch.setattr(promote, "_gate_set", lambda *a, **k: pytest.fail("read the gate set"))
    code = main(["-w", str(workspace), "promote", "gan", "--candidate", "1",
                 "--require", "accuracy >= 0.9"])
    assert (code, capsys.readouterr().err) == (2, PROMOTE_GAN_LINE)


PROMOTE_GAN_LINE = (f"error: --candidate: {GAN_IS}a gate cannot score it, so point "
                    f"gan@production at it with `dlforge models alias gan production 1` (no gate)\n")


def test_promote_of_a_gan_without_conditions_gives_the_gan_fix(workspace, capsys):
    """It said to add --require, which then refused the GAN: two fixes, the first useless."""
    code = main(["-w", str(workspace), "promote", "gan", "--candidate", "1"])
    assert (code, capsys.readouterr().err) == (2, PROMOTE_GAN_LINE)


def test_promote_of_a_gan_already_holding_the_alias_says_nothing_to_promote(tmp_path, capsys):
    """The GAN line told the user to move the alias to the version that already held it."""
    from tests.unit.export.export_models import register

    from dlforge.registry import Store

    register(tmp_path, "gan", DCGANConfig(width=4, latent_dim=4))
    with Store.open(tmp_path) as store:
        store.set_alias("gan", "production", 1)
    code = main(["-w", str(tmp_path), "promote", "gan", "--candidate", "1",
                 "--require", "accuracy >= 0.9"])
    assert (code, capsys.readouterr().err) == (
        2, "error: --candidate: gan@1 already holds gan@production; nothing to promote\n")


def test_update_refuses_a_gan_source_before_reading_its_data(workspace, tmp_path, capsys,
                                                            monkeypatch):
    """It built the update's config, started a run and read the fresh data first."""
    from dlforge.lifecycle import update

    config = tmp_path / "fresh.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": "builtin", "name": "digits"},
                                      "evaluate": {"gate": {"conditions": ["accuracy >= 0"]}}}))
    monkeypatch.setattr(update, "_fresh_data", lambda *a, **k: pytest.fail("read the data"))
    monkeypatch.setattr(update, "load_config", lambda *a, **k: pytest.fail("built a config"))
    code = main(["-w", str(workspace), "update", "gan@1", "--data", str(config)])
    assert (code, capsys.readouterr().err) == (2, f"error: model: {GAN_IS}{UPDATE_FIX}\n")


def test_update_watch_refuses_a_gan_source_before_watching(workspace, tmp_path, capsys,
                                                          monkeypatch):
    """It watched, copied the folder's files into the workspace as batch-0001, then exited 2."""
    from dlforge.lifecycle import watch

    (tmp_path / "new.csv").write_text("x,y\n1,0\n")
    monkeypatch.setattr(watch, "watch", lambda *a, **k: pytest.fail("watched"))
    code = main(["-w", str(workspace), "update", "gan@1", "--watch", str(tmp_path)])
    assert (code, capsys.readouterr().err) == (2, f"error: model: {GAN_IS}{UPDATE_FIX}\n")
    assert not (workspace / "updates").exists()


def test_an_update_run_refuses_a_gan_source_before_reading_its_data(tmp_path, monkeypatch):
    """`update.source` reached through the Python API (`dlforge.run(cfg)`), not the CLI."""
    from tests.unit.export.export_models import register

    import dlforge
    from dlforge.errors import ConfigError
    from dlforge.lifecycle import update
    from dlforge.registry import Store

    register(tmp_path, "gan", DCGANConfig(width=4, latent_dim=4))
    monkeypatch.setattr(update, "_fresh_data", lambda *a, **k: pytest.fail("read the data"))
    cfg = {"data": {"source": "builtin", "name": "digits"}, "update": {"source": "gan@1"}}
    with pytest.raises(ConfigError) as info:
        dlforge.run(cfg, workspace=tmp_path)
    assert str(info.value) == f"update.source: {GAN_IS}{UPDATE_FIX}"
    with Store.open(tmp_path) as store:
        assert store.list_runs() == []


def test_promote_refuses_a_gan_champion_before_reading_the_gate_set(tmp_path, capsys, monkeypatch):
    """A classifier registered under a GAN's name, gated against the GAN holding the alias."""
    from tests.unit.export.export_models import register

    from dlforge.lifecycle import promote
    from dlforge.registry import Store

    register(tmp_path, "mix", DCGANConfig(width=4, latent_dim=4))
    register(tmp_path, "mix", MLPConfig(hidden=[4]))
    with Store.open(tmp_path) as store:
        store.set_alias("mix", "production", 1)
    monkeypatch.setattr(promote, "_gate_set", lambda *a, **k: pytest.fail("read the gate set"))
    code = main(["-w", str(tmp_path), "promote", "mix", "--candidate", "2",
                 "--require", "accuracy >= 0.9"])
    assert (code, capsys.readouterr().err) == (
        2, "error: champion: mix@1, which holds mix@production, is a GAN (model.type dcgan): it "
           "generates images and predicts nothing; a gate cannot compare mix@2 with it: remove "
           "the alias with `dlforge models unalias mix production`, then promote mix@2 again "
           "(its absolute conditions are still checked)\n")


def test_models_show_names_each_versions_type(tmp_path, capsys):
    """A name can hold a GAN and a classifier; `models show` said nothing of which is which."""
    from tests.unit.export.export_models import register

    from dlforge.registry import Store

    register(tmp_path, "mix", DCGANConfig(width=4, latent_dim=4))
    register(tmp_path, "mix", MLPConfig(hidden=[4]))
    assert main(["-w", str(tmp_path), "models", "show", "mix@1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["type", "dcgan"] in rows
    assert main(["-w", str(tmp_path), "models", "show", "mix"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [(r[0], r[1]) for r in rows if r and r[0] in ("1", "2")] == [("1", "dcgan"), ("2", "mlp")]
    with Store.open(tmp_path) as store:
        (store.resolve("mix@2").bundle_path / "model.json").write_text("{not json")
    assert main(["-w", str(tmp_path), "models", "show", "mix@2"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split(maxsplit=1)[1].strip() for line in shown if line.startswith("type ")] == [
        "? (model.json unreadable)"]


def test_models_list_names_each_models_type_and_which_version_it_is(tmp_path, capsys):
    """`models list` showed no type: a GAN and a classifier looked alike."""
    from tests.unit.export.export_models import register

    from dlforge.registry import Store

    register(tmp_path, "gan", DCGANConfig(width=4, latent_dim=4))
    register(tmp_path, "mix", DCGANConfig(width=4, latent_dim=4))
    register(tmp_path, "mix", MLPConfig(hidden=[4]))

    def listed() -> list[str]:
        assert main(["-w", str(tmp_path), "models", "list"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == ["name", "latest", "versions", "aliases", "type"]
        return [" ".join(line.split()) for line in lines[1:] if line.strip()]

    assert listed() == ["gan 1 1 dcgan (latest)", "mix 2 2 mlp (latest)"]
    with Store.open(tmp_path) as store:
        store.set_alias("mix", "production", 1)  # the champion's type, not the latest's
        (store.resolve("gan@1").bundle_path / "model.json").write_text("{not json")
    assert listed() == ["gan 1 1 ? (latest: model.json unreadable)",
                        "mix 2 2 production->1 dcgan (production)"]

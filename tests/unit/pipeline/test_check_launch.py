"""`check_launch`: configs that cannot train data-parallel are refused before any process
starts (rank 0 alone would build an update's or a transfer's data)."""

from __future__ import annotations

import pytest

from dlforge.config import load_config
from dlforge.errors import ConfigError
from dlforge.pipeline.distributed_run import check_launch


@pytest.mark.parametrize("key", ["update.source", "transfer.source"])
def test_an_update_or_a_transfer_cannot_run_data_parallel(key):
    cfg = load_config(None, [f"{key}=dg@1"])
    with pytest.raises(ConfigError) as caught:
        check_launch(cfg, 2)
    assert str(caught.value) == (f"{key}: 'dg@1' cannot train with --nproc (only one process "
                                 f"would build its data); run it without --nproc")


def test_a_plain_config_launches():
    assert check_launch(load_config(None), 2) is None


def test_a_gan_cannot_run_data_parallel():
    cfg = load_config("examples/gan_digits.yaml")
    with pytest.raises(ConfigError) as caught:
        check_launch(cfg, 2)
    assert str(caught.value) == ("model.type: dcgan cannot train with --nproc (a GAN run trains "
                                 "its feature classifier and the GAN in one process); run it "
                                 "without --nproc")


def test_the_cli_refuses_a_data_parallel_gan_before_any_process_starts(tmp_path, capsys):
    from dlforge.cli import main

    workspace = tmp_path / "ws"
    assert main(["-w", str(workspace), "train", "examples/gan_digits.yaml", "--nproc", "2"]) == 2
    assert capsys.readouterr().err == (
        "error: model.type: dcgan cannot train with --nproc (a GAN run trains its feature "
        "classifier and the GAN in one process); run it without --nproc\n")
    assert not workspace.exists()


GAN_REFUSED = ("model.type: dcgan cannot train with --nproc (a GAN run trains its feature "
               "classifier and the GAN in one process); run it without --nproc")


def _failed_run(workspace, cfg) -> str:
    """A failed run of `cfg` in `workspace`'s store, to resume."""
    from dlforge.registry import Store

    with Store.open(workspace) as store:
        run_id = store.create_run(cfg.name, cfg.model_dump(mode="json"), None, None, 0).id
        store.finish_run(run_id, "failed")
    return run_id


def _status(workspace, run_id) -> str:
    from dlforge.registry import Store

    with Store.open(workspace) as store:
        return store.get_run(run_id).status


def test_resuming_a_gan_run_with_nproc_is_refused_before_any_process_starts(tmp_path, capsys):
    from dlforge.cli import main

    workspace = tmp_path / "ws"
    run_id = _failed_run(workspace, load_config("examples/gan_digits.yaml"))
    assert main(["-w", str(workspace), "run", "--resume", run_id, "--nproc", "2"]) == 2
    assert capsys.readouterr().err == f"error: {GAN_REFUSED}\n"
    assert _status(workspace, run_id) == "failed"  # not claimed


@pytest.mark.parametrize("key", ["update.source", "transfer.source"])
def test_resuming_an_update_or_a_finetune_run_with_nproc_is_refused(tmp_path, capsys, key):
    from dlforge.cli import main

    workspace = tmp_path / "ws"
    run_id = _failed_run(workspace, load_config(None, [f"{key}=dg@1"]))
    assert main(["-w", str(workspace), "run", "--resume", run_id, "--nproc", "2"]) == 2
    assert capsys.readouterr().err == (f"error: {key}: 'dg@1' cannot train with --nproc (only "
                                       f"one process would build its data); run it without "
                                       f"--nproc\n")
    assert _status(workspace, run_id) == "failed"


def test_a_resumed_search_run_may_train_data_parallel():
    cfg = load_config("examples/digits_search.yaml")
    assert cfg.tune is not None
    assert check_launch(cfg, 2, resumed=True) is None  # a resume trains the best config only
    with pytest.raises(ConfigError, match="^tune: a search cannot run with --nproc"):
        check_launch(cfg, 2)


MULTI_NODE = ["--nproc", "2", "--nnodes", "2", "--rdzv-endpoint", "127.0.0.1:29999"]


@pytest.fixture
def launched(monkeypatch):
    """The commands `start_ranks` would run in this node's processes (none are started)."""
    from dlforge.cli import launch

    commands = []
    monkeypatch.setattr(launch, "run_processes", lambda _launch, command: commands.append(command))
    return commands


@pytest.mark.parametrize("where", [["--node-rank", "1"], []])  # rank 1, or ranks c10d assigns
def test_a_node_without_the_store_resumes_without_reading_it(tmp_path, capsys, launched, where):
    from dlforge.cli import main

    workspace = tmp_path / "ws"
    assert main(["-w", str(workspace), "run", "--resume", "abc123", *MULTI_NODE, *where]) == 0
    assert launched == [["--workspace", str(workspace.resolve()), "run", "--resume", "abc123"]]
    assert capsys.readouterr().err == ""
    assert not workspace.exists()  # no empty store made on a node that has none


def test_the_node_holding_the_store_refuses_a_resumed_gan(tmp_path, capsys, launched):
    from dlforge.cli import main

    workspace = tmp_path / "ws"
    run_id = _failed_run(workspace, load_config("examples/gan_digits.yaml"))
    args = ["-w", str(workspace), "run", "--resume", run_id, *MULTI_NODE, "--node-rank", "0"]
    assert main(args) == 2
    assert capsys.readouterr().err == f"error: {GAN_REFUSED}\n"
    assert launched == []


def test_a_resume_in_a_workspace_without_a_store_creates_nothing(tmp_path, capsys, launched):
    from dlforge.cli import main

    workspace = tmp_path / "ws"
    assert main(["-w", str(workspace), "run", "--resume", "abc123", "--nproc", "2"]) == 1
    assert capsys.readouterr().err == (
        f"error: --resume: no run 'abc123': the workspace {workspace.resolve()} has no store "
        f"(dlforge.db); pass the run's workspace (-w) or its --store-url\n")
    assert launched == [] and not workspace.exists()


def test_rank_0_refuses_a_resumed_gan_on_any_node(tmp_path, monkeypatch):
    from dlforge.pipeline import distributed_run
    from dlforge.train import distributed

    workspace = tmp_path / "ws"
    run_id = _failed_run(workspace, load_config("examples/gan_digits.yaml"))
    monkeypatch.setattr(distributed, "init_process_group", lambda: 0)
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    monkeypatch.setattr(distributed, "close", lambda: None)
    monkeypatch.setattr(distributed_run, "_on_stop_signals", lambda rank: [])
    with pytest.raises(ConfigError) as caught:
        distributed_run.run_rank(None, workspace=workspace, resume=run_id, progress=False)
    assert str(caught.value) == GAN_REFUSED
    assert _status(workspace, run_id) == "failed"  # refused before the run is claimed

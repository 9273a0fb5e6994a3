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


def test_resuming_a_gan_run_with_nproc_is_refused_before_any_process_starts(tmp_path, capsys):
    from dlforge.cli import main
    from dlforge.registry import Store

    workspace = tmp_path / "ws"
    with Store.open(workspace) as store:
        gan = load_config("examples/gan_digits.yaml").model_dump(mode="json")
        run_id = store.create_run("digits-gan", gan, None, None, 0).id
        store.finish_run(run_id, "failed")
    assert main(["-w", str(workspace), "run", "--resume", run_id, "--nproc", "2"]) == 2
    assert capsys.readouterr().err == (
        "error: model.type: dcgan cannot train with --nproc (a GAN run trains its feature "
        "classifier and the GAN in one process); run it without --nproc\n")
    with Store.open(workspace) as store:
        assert store.get_run(run_id).status == "failed"  # not claimed

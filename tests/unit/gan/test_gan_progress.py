"""A GAN run trains two models: the progress names each before its epoch lines."""

from __future__ import annotations

from tests.e2e.test_gan_e2e import CONFIG

from dlforge.pipeline import run

# the e2e test's GAN, smaller: 200 digits, a 2-epoch classifier, 1 GAN epoch
TINY = {**CONFIG, "data": {**CONFIG["data"], "limit": 200}, "review": {"in_run": False},
        "model": {**CONFIG["model"], "width": 4, "latent_dim": 4, "grid": 4, "classifier_epochs": 2},
        "train": {**CONFIG["train"], "epochs": 1, "batch_size": 64}}


def test_the_classifier_and_the_gan_each_show_their_epochs_under_a_heading(tmp_path, capsys):
    run(TINY, workspace=tmp_path, progress=True)
    captured = capsys.readouterr()
    headings = [line for line in captured.err.splitlines() if line.startswith("gan:")]
    assert headings == ["gan: training the feature classifier first (basic_cnn, epochs: 2; its "
                        "features measure the Frechet distance)", "gan: training the GAN (epochs: 1)"]
    epochs = [line.split()[1] for line in captured.out.splitlines() if line.startswith("epoch ")]
    assert epochs == ["1/2", "2/2", "1/1"]


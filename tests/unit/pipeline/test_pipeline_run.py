"""pipeline.run on tiny real data: honest use of the splits, resume, store URL, refusals."""

from __future__ import annotations

import numpy as np
import pytest

import dlforge.candidate.train as candidate_train
from dlforge.errors import ConfigError
from dlforge.pipeline import run
from dlforge.registry import Store
from dlforge.train.callbacks import Callback

TINY = {
    "name": "tiny",
    "data": {"source": "builtin", "name": "breast_cancer"},
    "model": {"type": "mlp", "hidden": [8]},
    "train": {"epochs": 3, "batch_size": 64},
    "evaluate": {"baseline": False, "threshold": {"objective": "min_recall", "value": 0.9}},
}


def test_preprocessing_is_fitted_on_train_and_threshold_chosen_on_validation(tmp_path, monkeypatch):
    import dlforge.candidate.validation as validation
    import dlforge.data.prepare as prepare

    seen = {}
    real_build, real_choose = prepare.build_preprocessor, validation.choose_threshold

    def spy_build(cfg, modality):
        pre = real_build(cfg, modality)
        real_fit = pre.fit
        pre.fit = lambda x: seen.setdefault("fit_rows", len(x)) and real_fit(x)
        return pre

    def spy_choose(task, y, scores, cfg):
        seen["threshold_rows"] = len(y)
        return real_choose(task, y, scores, cfg)

    monkeypatch.setattr(prepare, "build_preprocessor", spy_build)
    monkeypatch.setattr(validation, "choose_threshold", spy_choose)
    result = run(TINY, workspace=tmp_path, progress=False)
    counts = Store.open(tmp_path).get_run(result.run_id).metrics
    n_train, n_val = 569 - round(569 * 0.15) - round(569 * 0.15), round(569 * 0.15)
    assert abs(seen["fit_rows"] - n_train) <= 1 and abs(seen["threshold_rows"] - n_val) <= 1
    assert counts["test"]["n_samples"] == 569 - seen["fit_rows"] - seen["threshold_rows"]
    assert counts["model"]["training_precision"] == "fp32"  # a small dense model: never bf16


@pytest.mark.parametrize("extra", [
    {},  # binary table with a validation threshold
    {"data": {"source": "builtin", "name": "wine"}, "evaluate": {"baseline": False}},
    {"data": {"source": "builtin", "name": "diabetes"}, "evaluate": {"baseline": False}},
])
def test_pipeline_metrics_equal_the_predictor_on_raw_test_inputs(tmp_path, extra):
    import dlforge
    from dlforge.config import load_config
    from dlforge.data.prepare import load_and_split
    from dlforge.evaluate.metrics import evaluate_scores

    cfg = {**TINY, **extra}
    result = run(cfg, workspace=tmp_path, progress=False)
    predictor = dlforge.load(result.model_ref, workspace=tmp_path)
    _, splits, _ = load_and_split(load_config(cfg))
    again = evaluate_scores(predictor.task, splits.test.y, predictor.predict_scores(splits.test.x),
                            predictor.threshold)
    assert again["headline"] == result.test_metrics["headline"]


def test_text_and_float_images_score_the_same_through_the_predictor(tmp_path):
    import dlforge

    rng = np.random.default_rng(0)
    x = rng.random((120, 1, 6, 6)).astype(np.float32)
    y = (x[:, 0, :3].mean(axis=(1, 2)) > x[:, 0, 3:].mean(axis=(1, 2))).astype(np.int64)
    np.savez(tmp_path / "d.npz", x_train=x[:90], y_train=y[:90], x_test=x[90:], y_test=y[90:])
    cfg = {"name": "floats", "data": {"source": "npz", "path": str(tmp_path / "d.npz")},
           "model": {"type": "mlp", "hidden": [8]}, "train": {"epochs": 2},
           "evaluate": {"baseline": False}}
    result = run(cfg, workspace=tmp_path / "ws", progress=False)
    predictor = dlforge.load("floats", workspace=tmp_path / "ws")
    scores = predictor.predict_scores(x[90:])
    assert predictor.predict(x[90:92])[0]["score"] == pytest.approx(float(scores[0]), abs=1e-6)
    assert result.test_metrics["n_samples"] == 30


def _timeless(history):
    """History rows without the wall-clock columns, which differ between any two runs."""
    return [{k: v for k, v in row.items() if k not in ("epoch_time_s", "samples_per_s")}
            for row in history]


class _Interrupt(Callback):
    def on_epoch_end(self, epoch, logs, state):
        if epoch == 1:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    whole = run(TINY, workspace=tmp_path / "a", progress=False)
    real_fit = candidate_train.fit
    monkeypatch.setattr(candidate_train, "fit", lambda *a, callbacks=(), **k: real_fit(
        *a, callbacks=[*callbacks, _Interrupt()], **k))
    with pytest.raises(KeyboardInterrupt):
        run(TINY, workspace=tmp_path / "b", progress=False)
    store = Store.open(tmp_path / "b")
    (interrupted,) = store.list_runs()
    assert interrupted.status == "interrupted" and store.list_models() == []
    monkeypatch.setattr(candidate_train, "fit", real_fit)
    resumed = run(workspace=tmp_path / "b", resume=interrupted.id[:6], progress=False)
    assert resumed.run_id == interrupted.id
    assert _timeless(resumed.history) == _timeless(whole.history)
    assert resumed.headline == whole.headline
    assert store.get_run(interrupted.id).status == "completed"


def test_the_store_url_is_honoured_and_its_password_never_shown(tmp_path):
    from dlforge.config import load_config

    cfg = load_config({**TINY, "serve": {"token": "s3cret"},
                       "registry": {"url": f"sqlite:///{tmp_path / 'elsewhere.db'}"}})
    result = run(cfg, workspace=tmp_path / "ws", progress=False)
    assert not (tmp_path / "ws" / "dlforge.db").exists()
    stored = Store(cfg.registry.url).get_run(result.run_id).config
    assert stored["serve"]["token"] == "***"
    assert "s3cret" not in result.report_path.read_text()


@pytest.mark.parametrize(("change", "message"), [
    ({"tune": {"n_trials": 2}}, "tune.space: nothing to search; give at least one key"),
    ({"model": {"type": "autoencoder"}}, "model.type: autoencoder reconstructs its input, for "
                                         "anomaly detection only"),
])
def test_unsupported_sections_fail_before_any_work(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        run({**TINY, **change}, workspace=tmp_path, progress=False)
    assert Store.open(tmp_path).list_runs() == []


def test_image_files_get_the_pixel_scale_of_float_training_data(tmp_path):
    from PIL import Image

    import dlforge

    rng = np.random.default_rng(1)
    x = (rng.integers(0, 256, (100, 1, 6, 6)) / 255.0).astype(np.float32)  # float pixels in [0, 1]
    y = (x[:, 0, :3].mean(axis=(1, 2)) > x[:, 0, 3:].mean(axis=(1, 2))).astype(np.int64)
    np.savez(tmp_path / "d.npz", x_train=x[:80], y_train=y[:80], x_test=x[80:], y_test=y[80:])
    cfg = {"name": "unit", "data": {"source": "npz", "path": str(tmp_path / "d.npz")},
           "model": {"type": "mlp", "hidden": [8]}, "train": {"epochs": 2},
           "evaluate": {"baseline": False}}
    run(cfg, workspace=tmp_path / "ws", progress=False)
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(np.rint(x[80 + i, 0] * 255).astype(np.uint8), mode="L").save(files[-1])
    predictor = dlforge.load("unit", workspace=tmp_path / "ws")
    assert predictor.predict_scores(files) == pytest.approx(predictor.predict_scores(x[80:83]), abs=1e-5)


def test_a_warmup_longer_than_the_run_fails_before_a_run_is_recorded(tmp_path):
    cfg = {**TINY, "train": {"epochs": 1, "schedule": {"type": "cosine", "warmup_steps": 10_000}}}
    with pytest.raises(ConfigError, match="warmup_steps"):
        run(cfg, workspace=tmp_path, progress=False)
    assert Store.open(tmp_path).list_runs() == []


def test_regression_outputs_are_scaled_to_the_training_targets(tmp_path):
    import dlforge
    from dlforge.config import load_config
    from dlforge.data.prepare import prepare_data
    from dlforge.models.target_scale import TargetScale

    cfg = {**TINY, "data": {"source": "builtin", "name": "diabetes"}, "evaluate": {"baseline": False},
           "train": {"epochs": 20, "batch_size": 32}}
    result = run(cfg, workspace=tmp_path, progress=False)
    model = dlforge.load(result.model_ref, workspace=tmp_path).bundle.model
    data = prepare_data(load_config(cfg))
    y_train, y_test = data.tensors["train"][1].double(), data.tensors["test"][1].double()
    assert isinstance(model, TargetScale)
    assert abs(model.mean.item() - y_train.mean().item()) < 1e-3
    assert abs(model.std.item() - y_train.std(unbiased=False).item()) < 1e-3
    naive_mae = (y_test - y_train.mean()).abs().mean().item()  # always predict the training mean
    assert result.test_metrics["mae"] < 0.85 * naive_mae  # 20 short epochs of a tiny MLP beat it


def test_a_data_only_config_records_the_resolved_config_and_peak_rss(tmp_path):
    raw = {"name": "cancer", "data": {"source": "builtin", "name": "breast_cancer"},
           "train": {"epochs": "auto", "time_budget_s": 60}, "evaluate": {"baseline": False}}
    result = run(raw, workspace=tmp_path, progress=False)
    stored = Store.open(tmp_path).get_run(result.run_id).config
    assert stored["model"] == {"type": "mlp", "init": "glorot", "hidden": [64, 32],
                               "activation": "relu", "dropout": 0.1, "batch_norm": False,
                               "parallel": None}
    assert (stored["train"]["epochs"], stored["train"]["time_budget_s"]) == (100, 60)
    assert "<td>peak RSS (MB)</td>" in result.report_path.read_text()
    assert "<td>train (s)</td>" in result.report_path.read_text()

"""The alias cache: a reference is read from the store at most once per alias_ttl; this
server's alias moves and reloads switch at once. The inference thread's torch threads, and
conv models served channels-last."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch
from fastapi.testclient import TestClient
from serve_models import DIGITS, image_pixels, make_store

from dlforge.config.schema import BasicCNNConfig, ImagePreprocess, ServeConfig
from dlforge.data.preprocess import ImagePreprocessor
from dlforge.models import build_model
from dlforge.registry import Predictor, Store, load_bundle
from dlforge.registry.bundle import save_bundle
from dlforge.serve import create_app
from dlforge.serve import models as serve_models
from dlforge.serve.models import ModelCache

TOKEN = {"Authorization": "Bearer s3cret"}
X = image_pixels(1, seed=3).tolist()


@pytest.fixture
def own_store(tmp_path):
    store = make_store(tmp_path)  # these tests move aliases: not the shared module store
    yield store
    store.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def count_reads(store, monkeypatch) -> list[tuple]:
    reads: list[tuple] = []
    real = store.get_version

    def get_version(*args):
        reads.append(args)
        return real(*args)

    monkeypatch.setattr(store, "get_version", get_version)
    return reads


def test_an_alias_moved_elsewhere_is_served_once_the_ttl_has_passed(own_store, monkeypatch):
    clock = Clock()
    reads = count_reads(own_store, monkeypatch)

    async def scenario() -> list[int]:
        cache = ModelCache(own_store, defaults={"digits": "production"}, alias_ttl=0.5, clock=clock)
        served = [(await cache.get("digits")).version.version]
        own_store.set_alias("digits", "production", 2)  # as the CLI or another server would
        clock.now += 0.49
        served.append((await cache.get("digits")).version.version)
        clock.now += 0.01
        served.append((await cache.get("digits")).version.version)  # stale; reads in background
        served.append((await cache.get("digits")).version.version)  # read still in flight: once
        await cache.settle()
        served.append((await cache.get("digits")).version.version)
        await cache.close()
        return served

    assert asyncio.run(scenario()) == [1, 1, 1, 1, 2]
    # (set_alias reads ("digits", 2) itself: only the cache's reads of the alias count here)
    assert [r for r in reads if r[1] == "production"] == [("digits", "production")] * 2


def test_a_failed_background_read_drops_the_answer_so_the_next_request_asks(own_store):
    clock = Clock()

    async def scenario() -> str:
        cache = ModelCache(own_store, alias_ttl=0.5, clock=clock)
        await cache.resolve("digits@production")
        own_store.remove_alias("digits", "production")
        clock.now += 1
        assert (await cache.resolve("digits@production")).version == 1  # stale, then re-read
        await cache.settle()
        try:
            await cache.resolve("digits@production")
        except Exception as exc:  # noqa: BLE001 - the store's own error reaches the client
            return type(exc).__name__
        finally:
            await cache.close()
        return "served"

    assert asyncio.run(scenario()) == "NotFoundError"


def test_a_zero_ttl_reads_the_store_on_every_request(own_store, monkeypatch):
    reads = count_reads(own_store, monkeypatch)

    async def scenario() -> None:
        cache = ModelCache(own_store, alias_ttl=0.0)
        for _ in range(3):
            await cache.resolve("digits@production")
        await cache.close()

    asyncio.run(scenario())
    assert reads == [("digits", "production")] * 3


def test_a_lookup_that_started_before_forget_is_not_kept(own_store):
    started, release = threading.Event(), threading.Event()
    real = own_store.get_version

    class SlowStore:
        def get_version(self, *args):
            version = real(*args)  # read before the move, returned after it
            started.set()
            release.wait(10)
            return version

    async def scenario() -> list[int]:
        cache = ModelCache(SlowStore(), alias_ttl=3600)
        slow = asyncio.ensure_future(cache.resolve("digits@production"))
        await asyncio.to_thread(started.wait, 10)
        own_store.set_alias("digits", "production", 2)
        cache.forget("digits")  # the move happened while the read was on its way
        release.set()
        first = (await slow).version
        second = (await cache.resolve("digits@production")).version
        await cache.close()
        return [first, second]

    assert asyncio.run(scenario()) == [1, 2]  # the stale answer was used once, not kept


def test_alias_move_and_reload_endpoints_switch_at_once(own_store, monkeypatch):
    monkeypatch.delenv("DLFORGE_SERVE_TOKEN", raising=False)
    app = create_app(own_store, ServeConfig(token="s3cret"), alias_ttl=3600)
    url = "/v1/models/digits@production/predict"
    with TestClient(app) as client:
        assert client.post(url, json={"inputs": X}).json()["version"] == 1
        own_store.set_alias("digits", "production", 2)  # elsewhere: cached for an hour
        assert client.post(url, json={"inputs": X}).json()["version"] == 1
        assert client.post("/v1/models/digits/reload", headers=TOKEN).json() == {
            "model": "digits", "reloaded": [1]}
        assert client.post(url, json={"inputs": X}).json()["version"] == 2
        moved = client.put("/v1/models/digits/aliases/production", json={"version": 1}, headers=TOKEN)
        assert moved.json() == {"model": "digits", "alias": "production", "version": 1}
        assert client.post(url, json={"inputs": X}).json()["version"] == 1


@pytest.mark.parametrize("threads", [1, 2])
def test_the_inference_thread_has_its_own_torch_threads(own_store, threads):
    before = torch.get_num_threads()

    async def scenario() -> int:
        cache = ModelCache(own_store, threads=threads)
        entry = await cache.get("digits@1")
        inside = await asyncio.get_running_loop().run_in_executor(entry.batcher.executor,
                                                                  torch.get_num_threads)
        await cache.close()
        return inside

    assert asyncio.run(scenario()) == threads
    assert torch.get_num_threads() == before  # the caller's thread keeps its own


@pytest.mark.parametrize(("threads", "expected"), [
    (None, [(1, 1), (7, 1), (8, 2), (32, 2), (1, 1)]),  # unset: by batch size, 2 cores
    (3, [(1, 3), (7, 3), (8, 3), (32, 3), (1, 3)]),  # set: always
])
def test_the_inference_threads_follow_the_batch_size_unless_set(monkeypatch, threads, expected):
    monkeypatch.setattr(serve_models, "physical_cores", lambda: 2)
    seen = []
    run = serve_models._on_threads(lambda inputs: seen.append((len(inputs), torch.get_num_threads())),
                                   threads)
    worker = threading.Thread(target=lambda: [run([0] * n) for n in (1, 7, 8, 32, 1)])
    before = torch.get_num_threads()
    worker.start()
    worker.join()
    assert seen == expected
    assert torch.get_num_threads() == before  # only the calling thread's count changes


def test_a_conv_model_served_channels_last_predicts_like_the_predictor(tmp_path, monkeypatch):
    monkeypatch.delenv("DLFORGE_SERVE_TOKEN", raising=False)
    pre = ImagePreprocessor(ImagePreprocess()).fit(image_pixels(64))
    torch.manual_seed(0)
    cfg = BasicCNNConfig(filters=[4, 8], dense=16)
    model = build_model(cfg, input_shape=pre.output_shape, num_outputs=3)
    bundle = save_bundle(tmp_path / "cnn", model=model, model_config=cfg, input_shape=pre.output_shape,
                         num_outputs=3, vocab_size=None, preprocessor=pre, task=DIGITS,
                         threshold=None, metrics={})
    x = image_pixels(4, seed=9)
    expected = Predictor(load_bundle(bundle)).predict(x, top_k=3)
    with Store.open(tmp_path / "ws") as store:
        store.register("cnn", None, bundle, {})
        with TestClient(create_app(store, ServeConfig())) as client:
            body = client.post("/v1/models/cnn/predict", json={"inputs": x.tolist(), "top_k": 3}).json()
    rows = body["predictions"]
    assert [r["label"] for r in rows] == [e["label"] for e in expected]
    for row, want in zip(rows, expected, strict=True):
        assert list(row["scores"]) == list(want["scores"])
        assert list(row["scores"].values()) == pytest.approx(list(want["scores"].values()), abs=1e-6)


def test_the_server_freezes_its_long_lived_objects_out_of_the_collector(own_store):
    import gc

    gc.unfreeze()
    with TestClient(create_app(own_store, ServeConfig(), models=["digits@production"])) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 10_000  # torch, FastAPI and the loaded model
    gc.unfreeze()

"""The HTTP endpoints: predict, model listings, alias moves and reloads, health and metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from dlforge.config.base import ALIAS_PATTERN, MODEL_NAME_PATTERN
from dlforge.registry.records import json_safe
from dlforge.serve.arrays import NPY_TYPE
from dlforge.serve.deps import ModelsDep, StoreDep, read_access, require_token
from dlforge.serve.inputs import Body, read_body, to_batch
from dlforge.serve.models import ModelCache
from dlforge.serve.schemas import (
    DEFAULT_TOP_K,
    AliasRequest,
    AliasResponse,
    EncodedPredictRequest,
    ErrorBody,
    ModelDetail,
    ModelList,
    PredictRequest,
    PredictResponse,
    ReloadResponse,
    inline_defs,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in
    ((401, "missing or wrong bearer token"), (404, "unknown model, version or alias"),
     (413, "body over serve.max_body_mb"), (422, "bad input, naming the problem"),
     (503, "store or bundle unavailable"))
}
# The predict body is read by hand (JSON, .npy or multipart), so describe each in the schema.
PREDICT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"oneOf": [PredictRequest.model_json_schema(),
                                              inline_defs(EncodedPredictRequest.model_json_schema())]}},
    NPY_TYPE: {"schema": {"type": "string", "format": "binary",
                          "description": "Images (N, H, W) or (N, C, H, W), uint8 or float32, "
                                         "as written by numpy.save; top_k as a query parameter."}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["files"],
        "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
    }},
}}}
# Patterns in the schema only: a bad name or alias gets the registry's own message.
NAME_PATTERN = (MODEL_NAME_PATTERN.removesuffix("$")
                + f"(@({ALIAS_PATTERN.strip('^$')}|[0-9]+))?$")
ModelName = Annotated[str, Path(description="Model name, or name@alias / name@version.",
                                 max_length=200, json_schema_extra={"pattern": NAME_PATTERN})]
BareModelName = Annotated[str, Path(description="Model name (no @alias or @version).",
                                     max_length=200, json_schema_extra={"pattern": MODEL_NAME_PATTERN})]
AliasName = Annotated[str, Path(description="Alias, such as production or staging.",
                                max_length=100, json_schema_extra={"pattern": ALIAS_PATTERN})]

router = APIRouter()
models_router = APIRouter(prefix="/v1/models", tags=["models"], responses=ERRORS)


@models_router.post("/{name}/predict", response_model=PredictResponse, openapi_extra=PREDICT_BODY,
                    dependencies=[Depends(read_access)])
async def predict(request: Request, name: ModelName,
                  models: ModelsDep,
                  top_k: Annotated[int | None, Query(ge=1, le=10_000, description=(
                      "Classes per input (multiclass); the JSON body's top_k wins."))] = None,
                  ) -> Response:
    """Predict with the version `name` points at: JSON ``{"inputs": [...]}``, images as base64
    bytes (``{"inputs": {"b64", "dtype", "shape"}}``) or a .npy body, or image files."""
    return await predict_response(request, name, models, top_k)


async def predict_response(request: Request, name: str, models: ModelCache,
                           top_k: int | None) -> Response:
    """The predict endpoint's work once its parameters are checked.

    Raises:
        DataError: bad input; NotFoundError: an unknown model, version or alias.
    """
    body = await read_body(request, request.app.state.max_items)
    content = await predict_json(models, name, body, top_k, request.app.state.max_pixels)
    return Response(content, media_type="application/json")


async def predict_json(models: ModelCache, name: str, body: Body, top_k: int | None,
                       max_pixels: int) -> bytes:
    """The JSON answer to a predict request whose `body` is read and parsed (shared with the
    fast path of `serve/fastpath.py`).

    Raises:
        DataError: bad input; NotFoundError: an unknown model, version or alias.
    """
    loaded = await models.get(name)
    batch = to_batch(body, loaded.predictor, top_k, max_pixels)
    rows = await loaded.batcher.submit(batch.items, batch.kind, batch.size)
    k = batch.top_k or DEFAULT_TOP_K
    # Written here with orjson (30x faster than the json module for 32 predictions), not
    # validated against PredictResponse again: that model documents the body. The rows hold
    # Python numbers and names; anything else (a numpy scalar) goes through json_safe.
    content = {"model": loaded.version.name, "version": loaded.version.version,
               "predictions": [_top_k(row, k) for row in rows]}
    return orjson.dumps(content, default=json_safe, option=orjson.OPT_NON_STR_KEYS)


@models_router.get("", response_model=ModelList, dependencies=[Depends(read_access)])
async def list_models(store: StoreDep) -> dict[str, Any]:
    """Every registered model with its latest version and aliases."""
    summaries = await asyncio.to_thread(store.list_models)
    return {"models": [{"name": s.name, "latest_version": s.latest_version, "versions": s.count,
                        "aliases": s.aliases} for s in summaries]}


@models_router.get("/{name}", response_model=ModelDetail, dependencies=[Depends(read_access)])
async def show_model(name: BareModelName, store: StoreDep) -> dict[str, Any]:
    """One model's versions (oldest first) with their aliases and metrics."""
    versions = await asyncio.to_thread(store.list_versions, name)
    return {"name": name,
            "versions": [{"version": v.version, "aliases": list(v.aliases),
                          "metrics": json_safe(v.metrics), "run_id": v.run_id,
                          "parent_version": v.parent_version,
                          "created_at": v.created_at.isoformat()} for v in versions],
            "aliases": {a: v.version for v in versions for a in v.aliases}}


@models_router.put("/{name}/aliases/{alias}", response_model=AliasResponse,
                   dependencies=[Depends(require_token)])
async def move_alias(name: BareModelName, alias: AliasName,
                     body: AliasRequest, store: StoreDep, models: ModelsDep) -> dict[str, Any]:
    """Point `alias` at a version (token required). Requests already running finish on the
    old version; the next ones use the new one."""
    version = await asyncio.to_thread(store.set_alias, name, alias, body.version,
                                      body.reason or "dlforge serve")
    models.forget(name)  # this server switches at once, not after the alias cache expires
    return {"model": name, "alias": alias, "version": version.version}


@models_router.post("/{name}/reload", response_model=ReloadResponse,
                    dependencies=[Depends(require_token)])
async def reload_model(name: BareModelName, store: StoreDep,
                       models: ModelsDep) -> dict[str, Any]:
    """Drop the loaded versions of `name` (token required); the next request loads them afresh."""
    await asyncio.to_thread(store.list_versions, name)  # 404 for an unknown model
    return {"model": name, "reloaded": models.drop(name)}


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], responses={503: {"model": ErrorBody}})
async def readyz(request: Request, store: StoreDep) -> dict[str, Any]:
    """Ready to serve: startup finished and the store answers."""
    await asyncio.to_thread(store.list_models)  # StoreError -> 503
    loaded = [f"{n}@{v}" for n, v in request.app.state.models.loaded()]
    return {"status": "ready", "loaded": loaded}


@router.get("/metrics", tags=["health"], response_class=Response,
            dependencies=[Depends(read_access)])
async def metrics(request: Request) -> Response:
    """Prometheus text: request counts, latency histogram, errors by status code, batch sizes,
    and the drift of each model version's served inputs against its training reference."""
    m = request.app.state.metrics
    return Response(m.exposition(), media_type=m.content_type)


def _top_k(row: dict[str, Any], k: int) -> dict[str, Any]:
    """Keep the k best classes of a multiclass row (the Predictor sorts them best first)."""
    if "label" in row and "scores" in row:
        return {**row, "scores": dict(list(row["scores"].items())[:k])}
    return row

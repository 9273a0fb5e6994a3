"""Request and response bodies of the inference service (pydantic, so they appear in /openapi.json)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from dlforge.registry.json_inputs import checked_top_k

# One input item: an image as nested arrays of pixels, a text, or a table row (object, or an
# array in the training column order). Which kind a model takes is checked per model
# (serve/inputs.py), so that the message can say what that model wants.
InputItem = Any
ARRAY_DTYPES = ("uint8", "float32")
DEFAULT_TOP_K = 5  # classes per input when neither the body nor the query says


def _strict_top_k(value: Any) -> int | None:
    """The body's ``top_k`` as `checked_top_k` reads it (``dlforge predict``'s JSON files too)."""
    try:
        return checked_top_k(value, otherwise=f"the query's top_k (default {DEFAULT_TOP_K})")
    except ValueError as exc:
        raise PydanticCustomError("top_k", str(exc)) from None


# ge=1 on the int alone: on `int | None` pydantic applies it to None too (a TypeError, a 500)
# and leaves `minimum` out of the schema.
TopK = Annotated[Annotated[int, Field(ge=1)] | None, BeforeValidator(_strict_top_k),
                 Field(description="Classes to return per input (multiclass): a JSON integer.")]


class EncodedArray(BaseModel):
    """A batch of images as raw bytes (serve/arrays.py): no pixel is parsed as JSON."""

    model_config = ConfigDict(extra="forbid")
    b64: str = Field(description="The array's bytes in C order (little-endian), base64 with "
                                 "padding: base64.b64encode(x.tobytes()).")
    dtype: Literal["uint8", "float32"] = Field(description="Pixel type of the bytes.")
    shape: list[Annotated[int, Field(ge=0)]] = Field(description="(N, H, W) or (N, C, H, W); N is the number of "
                                         "images, at most the server's --max-items.",
                             json_schema_extra={"minItems": 3, "maxItems": 4})


class PredictRequest(BaseModel):
    """JSON body of ``POST /v1/models/{name}/predict``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"inputs": [[[0, 12, 255], [3, 0, 7]]]},
        {"inputs": ["a good film"]},
        {"inputs": [{"age": 41, "plan": "basic"}]},
    ]})
    # minItems in the schema only: an empty list gets dlforge's own message (serve/inputs.py);
    # maxItems is the app's --max-items, set on its schema (serve/openapi.py).
    inputs: list[InputItem] = Field(
        description="Images as (C, H, W) or (H, W) pixel arrays, texts as strings, "
                    "table rows as objects (column -> value) or arrays in column order.",
        json_schema_extra={"minItems": 1})
    top_k: TopK = None


class EncodedPredictRequest(BaseModel):
    """JSON body of predict with the images as raw bytes (one parse, no pixel walked)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"inputs": {"b64": "AAz/AwAH", "dtype": "uint8", "shape": [1, 2, 3]}, "top_k": 3},
    ]})
    inputs: EncodedArray
    top_k: TopK = None


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its ``$defs`` references replaced by the definitions (one level), so it
    can sit anywhere in an OpenAPI document.

    Example:
        >>> inline_defs(EncodedPredictRequest.model_json_schema())["properties"]["inputs"]["title"]
        'EncodedArray'
    """
    defs = schema.get("$defs", {})
    properties = {key: defs[value["$ref"].rsplit("/", 1)[1]] if "$ref" in value else value
                  for key, value in schema.get("properties", {}).items()}
    return {**{k: v for k, v in schema.items() if k != "$defs"}, "properties": properties}


class PredictResponse(BaseModel):
    """Predictions of one model version, one per input, in input order."""

    model: str
    version: int
    predictions: list[dict[str, Any]] = Field(
        description="multiclass: label and top-k scores; binary: label, score and threshold; "
                    "anomaly: label, score (reconstruction error), threshold and anomaly; "
                    "multilabel: labels, scores and thresholds; regression: value(s).")


class ModelSummaryOut(BaseModel):
    name: str
    latest_version: int
    versions: int
    aliases: dict[str, int]


class ModelList(BaseModel):
    models: list[ModelSummaryOut]


class VersionOut(BaseModel):
    version: int
    aliases: list[str]
    metrics: dict[str, Any]
    run_id: str | None
    parent_version: int | None
    created_at: str


class ModelDetail(BaseModel):
    name: str
    versions: list[VersionOut]
    aliases: dict[str, int]


class AliasRequest(BaseModel):
    """Body of ``PUT /v1/models/{name}/aliases/{alias}``."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, description="The version the alias should point at.")
    reason: str | None = Field(None, max_length=500, description="Kept in the audit log.")


class AliasResponse(BaseModel):
    model: str
    alias: str
    version: int


class ReloadResponse(BaseModel):
    model: str
    reloaded: list[int] = Field(description="Versions dropped from the cache; loaded again on use.")


class ErrorBody(BaseModel):
    detail: str = Field(description="What is wrong and how to fix it, one line per problem.")

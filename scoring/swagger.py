"""Swagger 2 / OpenAPI 3 documents for ``/score``: the user's own files from ``AML_APP_ROOT``
(``swagger.json`` or ``swagger2.json``, ``swagger3.json``, ``swagger3.1.json``, as azmlinfsrv
reads them), else generated from the inference-schema decorators, paths under
``SERVICE_PATH_PREFIX``."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

from .entry import UserScript

VERSION_ALIASES = {"2": "2.0", "2.0": "2.0", "3": "3.0", "3.0": "3.0", "3.1": "3.1"}
_ERROR = {"type": "object", "properties": {"message": {"type": "string"}}}
_EMPTY = {"type": "object", "example": {}}


log = logging.getLogger("scoring")

# version -> the user's files that answer it, first found wins (azmlinfsrv's names)
_USER_FILES = {
    "2.0": ("swagger.json", "swagger2.json"),
    "3.0": ("swagger3.json",),
    "3.1": ("swagger3.1.json",),
}


class SwaggerError(Exception):
    pass


def user_documents(app_root: Path) -> dict[str, Any]:
    """The user's swagger files in ``app_root``, read once at start (as azmlinfsrv does)."""
    docs: dict[str, Any] = {}
    for version, names in _USER_FILES.items():
        for name in names:
            path = Path(app_root) / name
            try:
                docs[version] = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                log.error("ignoring %s: %s", path, exc)
                continue
            log.info("serving the user's swagger %s for version %s", path, version)
            break
    return docs


def _schemas(script: UserScript) -> tuple[Any, Any, list[str]]:
    if not script.schema_decorated:
        return copy.deepcopy(_EMPTY), copy.deepcopy(_EMPTY), ["2.0", "3.0", "3.1"]
    from inference_schema.schema_util import (
        get_input_schema,
        get_output_schema,
        get_supported_versions,
    )

    return (
        get_input_schema(script.run),
        get_output_schema(script.run),
        list(get_supported_versions(script.run)),
    )


def _operations(auth: bool, ref: str) -> dict[str, Any]:
    err = {"description": "The service failed to execute due to an error."}
    score: dict[str, Any] = {
        "operationId": "RunMLService",
        "description": "Run the model and get the prediction output.",
    }
    if auth:
        score["security"] = [{"Bearer": []}]
    return {
        "health": {
            "operationId": "ServiceHealthCheck",
            "description": "Liveness: 200 while the service is up.",
            "ok": {"description": "Healthy", "schema": {"type": "string"}},
        },
        "score": score,
        "error": err,
    }


def build(
    script: UserScript,
    version: str,
    *,
    title: str,
    service_version: str,
    auth: bool,
    prefix: str = "",
    user: dict[str, Any] | None = None,
) -> dict[str, Any]:
    canonical = VERSION_ALIASES.get(version)
    if canonical is None:
        raise SwaggerError(
            f"Swagger version [{version}] is not valid. Supported versions: [2, 3, 3.1]."
        )
    if user and canonical in user:
        return user[canonical]
    doc = _generate(script, canonical, version, title, service_version, auth)
    if prefix:
        doc["paths"] = {prefix + path: item for path, item in doc["paths"].items()}
    return doc


def _generate(
    script: UserScript, canonical: str, version: str, title: str, service_version: str, auth: bool
) -> dict[str, Any]:
    input_schema, output_schema, supported = _schemas(script)
    if canonical not in supported:
        raise SwaggerError(
            f"Swagger version [{version}] is not supported for the scoring script. "
            f"Supported swagger versions: [{', '.join(sorted(supported))}]."
        )
    info = {
        "title": title,
        "description": f"API specification for the Azure Machine Learning service {title}",
        "version": service_version,
    }
    bearer = {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "For example: Bearer abc123",
    }
    if canonical == "2.0":
        ops = _operations(auth, "#/definitions/")
        score = dict(ops["score"])
        score["parameters"] = [
            {
                "name": "serviceInputPayload",
                "in": "body",
                "description": "The input payload for the model.",
                "schema": {"$ref": "#/definitions/ServiceInput"},
            }
        ]
        score["responses"] = {
            "200": {"description": "Prediction", "schema": {"$ref": "#/definitions/ServiceOutput"}},
            "default": {
                "description": ops["error"]["description"],
                "schema": {"$ref": "#/definitions/ErrorResponse"},
            },
        }
        doc: dict[str, Any] = {
            "swagger": "2.0",
            "info": info,
            "schemes": ["https"],
            "consumes": ["application/json"],
            "produces": ["application/json"],
            "securityDefinitions": {"Bearer": bearer},
            "paths": {
                "/": {
                    "get": {
                        "operationId": "ServiceHealthCheck",
                        "description": ops["health"]["description"],
                        "responses": {"200": ops["health"]["ok"]},
                    }
                },
                "/score": {"post": score},
            },
            "definitions": {
                "ServiceInput": input_schema,
                "ServiceOutput": output_schema,
                "ErrorResponse": _ERROR,
            },
        }
        return doc
    ops = _operations(auth, "#/components/schemas/")
    score = dict(ops["score"])
    score["requestBody"] = {
        "description": "The input payload for the model.",
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ServiceInput"}}},
    }
    score["responses"] = {
        "200": {
            "description": "Prediction",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ServiceOutput"}}
            },
        },
        "default": {
            "description": ops["error"]["description"],
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        },
    }
    return {
        "openapi": "3.1.0" if canonical == "3.1" else "3.0.1",
        "info": info,
        "paths": {
            "/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": ops["health"]["description"],
                    "responses": {
                        "200": {
                            "description": "Healthy",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/score": {"post": score},
        },
        "components": {
            "securitySchemes": {"Bearer": bearer},
            "schemas": {
                "ServiceInput": input_schema,
                "ServiceOutput": output_schema,
                "ErrorResponse": _ERROR,
            },
        },
    }

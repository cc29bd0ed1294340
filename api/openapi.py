"""The OpenAPI 3 document, with request and spec schemas taken from the pydantic models."""

from __future__ import annotations

from functools import lru_cache

from shared.specs import PRESETS, Spec

REF = "#/components/schemas/{model}"


def _json(schema_ref: str, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


def _error(description: str) -> dict:
    return _json("#/components/schemas/Error", description)


def _id(name: str = "job_id") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


@lru_cache(maxsize=1)
def document() -> dict:
    from api.jobs import JobCreate

    schemas = {
        "Spec": Spec.model_json_schema(ref_template=REF),
        "JobCreate": JobCreate.model_json_schema(ref_template=REF),
        "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "status": {"type": "integer"}, "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object"}}}}}},
        "Job": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "preset": {"type": ["string", "null"]}, "spec": {"$ref": "#/components/schemas/Spec"},
            "progress": {"type": ["object", "null"], "description": "phase, epoch, epochs, step, steps, fraction 0-1"},
            "created_at": {"type": "string", "format": "date-time"}, "worker": {"type": ["string", "null"]},
            "attempts": {"type": "integer"}, "error": {"type": ["string", "null"]},
            "result": {"type": ["object", "null"], "description": "test_accuracy (fraction), test_loss, params, "
                       "train_seconds, samples_per_second, data, environment"}}},
        "JobList": {"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
            "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"},
            "next": {"type": ["string", "null"]}}},
        "Metrics": {"type": "object", "properties": {
            "epochs": {"type": "array", "items": {"type": "object"}},
            "steps": {"type": "array", "items": {"type": "object"}}}},
    }
    for schema in list(schemas.values()):  # pydantic puts nested models under $defs; hoist them
        schemas.update(schema.pop("$defs", {}))
    filters = [{"name": n, "in": "query", "schema": {"type": "string"}} for n in ("status", "preset", "model", "dataset")]
    filters += [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}]
    job = "#/components/schemas/Job"
    paths = {
        "/jobs": {
            "post": {"summary": "Submit a job (a preset with overrides, or a full spec)",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/JobCreate"},
                         "example": {"preset": "mnist-cnn", "overrides": {"train_limit": 2000}}}}},
                     "responses": {"201": _json(job, "Created; Location names the job"), "400": _error("Not JSON"),
                                   "413": _error("Body too large"), "422": _error("Invalid spec"),
                                   "503": _error("Stored, but the broker is unreachable")}},
            "get": {"summary": "List jobs, newest first", "parameters": filters,
                    "responses": {"200": _json("#/components/schemas/JobList"), "422": _error("Bad filter")}}},
        "/jobs/{job_id}": {"get": {"summary": "A job: status, progress, result", "parameters": [_id()],
                                   "responses": {"200": _json(job), "404": _error("Unknown job")}}},
        "/jobs/{job_id}/metrics": {"get": {"summary": "Per-epoch metrics and per-100-step training loss",
                                           "parameters": [_id()],
                                           "responses": {"200": _json("#/components/schemas/Metrics"),
                                                         "404": _error("Unknown job")}}},
        "/jobs/{job_id}/cancel": {"post": {"summary": "Cancel: queued never starts, running stops at a step boundary",
                                           "parameters": [_id()],
                                           "responses": {"202": _json(job), "404": _error("Unknown job"),
                                                         "409": _error("Already finished")}}},
        "/jobs/{job_id}/checkpoints": {"get": {"summary": "Checkpoints with sha256", "parameters": [_id()],
                                               "responses": {"200": {"description": "OK"},
                                                             "404": _error("Unknown job")}}},
        "/jobs/{job_id}/checkpoints/{epoch}": {"get": {
            "summary": "A checkpoint file; X-Checkpoint-SHA256 carries its sha256", "parameters": [_id(), _id("epoch")],
            "responses": {"200": {"description": "The file",
                                  "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                          "404": _error("Unknown job or epoch"), "410": _error("File gone from disk")}}},
        "/presets": {"get": {"summary": f"The presets ({', '.join(PRESETS)})", "responses": {"200": {"description": "OK"}}}},
        "/healthz": {"get": {"summary": "Database and broker reachable",
                             "responses": {"200": {"description": "Healthy"}, "503": {"description": "Degraded"}}}},
    }
    return {"openapi": "3.1.0", "info": {"title": "cnnlab", "version": "0.1.0",
                                          "description": "Train the classic CNN lab experiments as jobs."},
            "paths": paths, "components": {"schemas": schemas}}

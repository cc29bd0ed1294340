"""The API docs page (GET /api): the OpenAPI document rendered on the server, offline, no script."""

from __future__ import annotations

from typing import Any

from flask import render_template

from api.openapi import document

METHODS = ("get", "post", "put", "patch", "delete")


def ref_name(schema: dict[str, Any] | None) -> str | None:
    """'#/components/schemas/JobOut' -> 'JobOut'."""
    ref = (schema or {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1] or None


def kind(schema: dict[str, Any]) -> str:
    """A property's type in a few words: JobOut, list of Tag, string | null, one of a, b."""
    if "$ref" in schema:
        return ref_name(schema)
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "anyOf" in schema:
        return " | ".join(kind(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return "list of " + kind(schema.get("items", {}))
    return str(schema.get("type", "any"))


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation in the document's order: method, path, summary, parameters, body, answers, auth."""
    out = []
    for path, ops in doc["paths"].items():
        for method in (m for m in METHODS if m in ops):
            op = ops[method]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            answers = [{"status": code, "description": r.get("description", ""),
                        "types": list(r.get("content", {})),
                        "model": ref_name(r.get("content", {}).get("application/json", {}).get("schema"))}
                       for code, r in op["responses"].items()]
            out.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                        "parameters": [p | {"kind": kind(p.get("schema", {}))} for p in op.get("parameters", [])],
                        "body": ref_name(body.get("schema")), "example": body.get("example"), "answers": answers,
                        "token": "needs a token" if method != "get" else "open (unless reads need a token)"
                        if op.get("security") else "never needs a token",
                        "anchor": f"{method}-{path.strip('/').replace('/', '-').replace('{', '').replace('}', '')}"})
    return out


def schemas(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Each component schema with its properties (name, kind, required, description)."""
    out = []
    for name, schema in doc["components"]["schemas"].items():
        required = set(schema.get("required", []))
        props = [{"name": p, "kind": kind(s), "required": p in required, "description": s.get("description", "")}
                 for p, s in schema.get("properties", {}).items()]
        out.append({"name": name, "description": schema.get("description", ""), "properties": props,
                    "enum": schema.get("enum")})
    return out


def docs_page() -> str:
    doc = document()
    return render_template("openapi.html", info=doc["info"], operations=operations(doc), schemas=schemas(doc),
                           security=doc["components"]["securitySchemes"])

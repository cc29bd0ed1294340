"""The SQL test "this job has tag x" on SQLite and PostgreSQL (what a tag may be: shared.lab.runs.Tag)."""

from __future__ import annotations

from sqlalchemy import Boolean
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class has_tag(FunctionElement):  # noqa: N801 - reads as SQL: where(has_tag(Job.tags, "x"))
    """True where the JSON list column holds the string tag exactly."""

    type = Boolean()
    inherit_cache = True
    name = "has_tag"


@compiles(has_tag, "sqlite")
def _has_tag_sqlite(element, compiler, **kw) -> str:
    column, tag = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {tag})"


@compiles(has_tag, "postgresql")
def _has_tag_postgresql(element, compiler, **kw) -> str:
    column, tag = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST({column} AS JSONB) @> jsonb_build_array(CAST({tag} AS TEXT)))"

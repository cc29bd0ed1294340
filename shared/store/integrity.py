"""What a database integrity error was about, in the client's terms: the fields of the constraint it broke."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError

__all__ = ["IntegrityError", "Refused", "refused"]

_SQLITE = re.compile(r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?::\s*(.+))?")
_PG_KEY = re.compile(r"Key \(([^)]+)\)")
_PG_COLUMN = re.compile(r'column "([^"]+)"')


class Refused:
    """An integrity error told as: which fields, and whether it was a repeated value (unique) or another rule."""

    def __init__(self, fields: list[str], unique: bool):
        self.fields, self.unique = fields, unique

    @property
    def message(self) -> str:
        named = ", ".join(self.fields) or "a field"
        if self.unique:
            return f"a value that must be unique is repeated or already stored: {named}"
        return f"a value the database refuses (missing, out of range or unknown reference): {named}"


def refused(exc: IntegrityError) -> Refused:
    """The constraint's fields, from SQLite's or PostgreSQL's message (table.column for SQLite, column for PG)."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    sqlite = _SQLITE.search(text)
    if sqlite:
        fields = [f.strip() for f in (sqlite.group(2) or "").split(",") if f.strip()]
        return Refused(fields, sqlite.group(1) == "UNIQUE")
    unique = "unique constraint" in text
    key = _PG_KEY.search(text) or _PG_COLUMN.search(text)
    return Refused([f.strip() for f in key.group(1).split(",")] if key else [], unique)

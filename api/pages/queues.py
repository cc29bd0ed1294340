"""The queue page: the queues and their depth, the live workers and what each runs, the waiting jobs in order."""

from __future__ import annotations

from typing import Any

from flask import render_template


def queue_page(overview: dict[str, Any]) -> str:
    """The queue page, from GET /queue's body."""
    return render_template("queue.html", **overview)

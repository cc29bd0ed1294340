"""The study pages: the catalog, and one study with its answer and chart."""

from __future__ import annotations

from typing import Any

from flask import render_template

from api.pages.sweeps import metric_chart
from shared.lab.studies import LISTED_SIZES, Size


def list_page(page: dict[str, Any]) -> str:
    """The studies page, from GET /studies's body."""
    return render_template("studies.html", **page)


def study_page(study: dict[str, Any], size: Size, max_seeds: int) -> str:
    """One study's page, from GET /studies/<name>'s body at `size`; its run form offers up to `max_seeds`."""
    return render_template("study.html", study=study, size=size, sizes=LISTED_SIZES, chart=study_chart(study),
                           max_seeds=max_seeds)


def study_chart(out: dict[str, Any]) -> dict[str, Any]:
    """Test accuracy per cell (categories) with its 95% interval: the sweep page's chart."""
    cells = out["answer"]["cells"]
    chart = metric_chart({"cell": [c["label"] for c in cells]}, cells)
    return chart | {"x": "cell"}

"""The handout page (GET /handout): every question of the lab, both answers side by side, its run button; and
the same as one self-contained HTML file (the stylesheet inlined, no script, no link back) to hand out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, render_template

from shared.lab.studies import LISTED_SIZES

FILE_NAME = "cnnlab-handout.html"


def handout_page(data: dict[str, Any], file: bool = False):
    """The page from GET /handout?format=json's body; `file`: the one-file export, as a download."""
    if not file:
        return render_template("handout.html", h=data, sizes=LISTED_SIZES, file=False)
    css = Path(current_app.static_folder, "style.css").read_text(encoding="utf-8")
    html = render_template("handout_file.html", h=data, css=css, file=True)
    return html, 200, {"Content-Type": "text/html; charset=utf-8",
                       "Content-Disposition": f'attachment; filename="{data["size"]}-{FILE_NAME}"'}

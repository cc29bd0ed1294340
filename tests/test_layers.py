"""The layer rules that import-linter cannot state: what loads without torch, where settings are read, no loops."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from support import REPO


def modules(package: str) -> list[str]:
    """Every module of a package of this repository, by its files (nothing imported)."""
    files = (REPO / package.replace(".", "/")).rglob("*.py")
    return sorted(".".join(f.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__") for f in files)


# Import each module in turn in a fresh Python, then make the app; print the first that loaded a heavy package.
FIRST_HEAVY_IMPORT = """
import importlib, sys
heavy, names = sys.argv[1].split(","), sys.argv[2:]
for name in names:
    importlib.import_module(name)
    if name == "api":
        importlib.import_module("api").create_app()
    loaded = [h for h in heavy if h in sys.modules]
    if loaded:
        sys.exit(f"{name} loaded {loaded}")
"""


@pytest.mark.parametrize("packages, heavy", [
    # The vocabulary every layer speaks: no torch, no SQL, no web or queue code.
    (["shared.lab"], ["torch", "sqlalchemy", "flask", "celery", "redis"]),
    # The API and the Celery process stay light: torch is imported only where a model is built or trained
    # (the store's submit-time checks, shared.train.runnable, import it when they run).
    (["shared.store", "shared.train.runnable", "api", "worker.supervisor"], ["torch"]),
    # `cnnlab`'s parser: the service's commands go over HTTP, training imports torch when it starts.
    (["shared.cli.main", "shared.cli.jobs", "shared.cli.sweep", "shared.cli.tokens", "shared.cli.client"],
     ["torch", "sqlalchemy", "flask", "celery"]),
], ids=["lab", "store-api-supervisor", "cli"])
def test_the_light_layers_load_without_the_heavy_packages(packages, heavy):
    names = [m for p in packages for m in (modules(p) if (REPO / p.replace(".", "/")).is_dir() else [p])]
    out = subprocess.run([sys.executable, "-c", FIRST_HEAVY_IMPORT, ",".join(heavy), *names], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_cnnlab_settings_are_read_in_one_place():
    """Every CNNLAB_* variable is a field of shared.lab.settings.Settings, read nowhere else."""
    reads = re.compile(r"(environ\.get\(|environ\[|getenv\()\s*[\"']CNNLAB_\w+[\"'](?!\]\s*=[^=])")  # not writes
    offenders = [f"{p.relative_to(REPO)}:{i}" for root in ("shared", "api", "worker")
                 for p in (REPO / root).rglob("*.py") if p.name != "settings.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if reads.search(line)]
    assert offenders == []


def test_every_setting_is_in_the_readme_table():
    from shared.lab.settings import Settings

    readme = (REPO / "README.md").read_text()
    missing = [f"CNNLAB_{name.upper()}" for name in Settings.model_fields if f"`CNNLAB_{name.upper()}`" not in readme]
    assert missing == []


def test_a_worker_claims_a_job_without_importing_torch(data_root, tmp_path):
    """The Celery pool process claims and hands over jobs; only its trainer imports torch (2 s of CPU and 265 MB
    that every new worker would pay again: measured on a fleet replacing a killed worker every few seconds)."""
    from support import migrate

    from shared.store.db import session_scope
    from shared.store.jobs import create_job

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    migrate(url)
    with session_scope(url) as s:
        job, _ = create_job(s, preset="mnist-cnn", data_root=data_root)
        s.flush()
        job_id = job.id
    code = ("import sys; from shared.store.db import retry; from worker import supervisor; "
            f"spec, _, attempt = retry(lambda s: supervisor._claim(s, {job_id}, 'w@host:1')); "
            "print(spec.model, attempt, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "CNNLAB_DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cnn", "1", "False"]


# Known loops, each with who is breaking it. Empty: a new loop fails the test below, and so does an entry whose
# loop is gone, so the list cannot outlive its loops.
CYCLES_BEING_BROKEN: dict[frozenset[str], str] = {}


def import_loops(graph) -> list[frozenset[str]]:
    """The strongly connected sets of two or more modules (Tarjan): every import loop, however long."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[frozenset[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            members = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(members) > 1:
                loops.append(frozenset(members))

    for module in sorted(graph.modules):
        if module not in order:
            visit(module)
    return loops


def test_no_import_loops():
    """No two modules of shared/, api/, worker/ import each other, directly or round a longer loop; imports
    inside functions count (a lazy import hides a loop, it does not break it)."""
    import importlib.util

    import grimp

    assert importlib.util.find_spec("shared").origin == str(REPO / "shared" / "__init__.py")  # this tree's code
    graph = grimp.build_graph("shared", "api", "worker", include_external_packages=False, cache_dir=None)
    loops = import_loops(graph)
    edges = lambda loop: sorted(f"{a} -> {b}" for a in loop for b in graph.find_modules_directly_imported_by(a) & loop)
    unexpected = [edges(loop) for loop in loops if not any(loop <= known for known in CYCLES_BEING_BROKEN)]
    assert unexpected == []
    gone = [sorted(known) for known in CYCLES_BEING_BROKEN if not any(loop <= known for loop in loops)]
    assert gone == [], "these loops are broken: remove them from CYCLES_BEING_BROKEN"

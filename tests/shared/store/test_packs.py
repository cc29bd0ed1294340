"""Claiming a sweep cell's jobs as one pack: only the cell's queued jobs, each taken once, resumed jobs alone."""

from __future__ import annotations

from shared.lab.sweeps import SweepRequest
from shared.store import jobs
from shared.store.db import session_scope
from shared.store.models import Checkpoint, Job
from shared.store.sweeps import create_sweep


def _sweep(db_url, data_root) -> list[list[int]]:
    """Two cells of three seeds; the job ids per cell."""
    request = SweepRequest(base={"preset": "mnist-fc"}, grid={"model_args.n_hidden": [4, 8]}, seeds=3)
    with session_scope(db_url) as s:
        sweep = create_sweep(s, request, data_root=data_root)
        return [[j.id for j in sweep.jobs if j.cell_index == c] for c in (0, 1)]


def test_a_claimed_job_takes_its_queued_cell_mates_and_no_other_cell(db_url, data_root):
    cell, other = _sweep(db_url, data_root)
    with session_scope(db_url) as s:
        first = jobs.claim(s, cell[0], "w1")
        mates = jobs.claim_cell_mates(s, first, "w1", limit=8)
        assert sorted(m.id for m in mates) == cell[1:]
        assert {s.get(Job, i).worker for i in cell} == {"w1"}
        assert {s.get(Job, i).status for i in other} == {"queued"}
    with session_scope(db_url) as s:  # their own messages arrive later: the claim refuses them
        assert jobs.claim(s, cell[1], "w2") is None


def test_the_limit_and_jobs_with_checkpoints_are_respected(db_url, data_root):
    cell, _ = _sweep(db_url, data_root)
    with session_scope(db_url) as s:
        s.add(Checkpoint(job_id=cell[2], epoch=1, key="jobs/0/nowhere", sha256="0" * 64, size_bytes=1))
    with session_scope(db_url) as s:
        first = jobs.claim(s, cell[0], "w1")
        assert [m.id for m in jobs.claim_cell_mates(s, first, "w1", limit=8)] == [cell[1]]  # cell[2] resumes alone
    with session_scope(db_url) as s:
        lone = jobs.claim(s, cell[2], "w2")
        assert jobs.claim_cell_mates(s, lone, "w2", limit=0) == []


def test_a_job_outside_any_sweep_packs_nothing(db_url, data_root):
    with session_scope(db_url) as s:
        job, _ = jobs.create_job(s, preset="mnist-fc", data_root=data_root)
        s.flush()
        assert jobs.claim_cell_mates(s, job, "w1", limit=8) == []

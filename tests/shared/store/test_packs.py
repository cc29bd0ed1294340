"""Claiming a sweep's jobs as one pack: queued jobs that differ only in per-member fields, each taken once, resumed jobs alone."""

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
        mates = jobs.claim_pack_mates(s, first, "w1", limit=8)
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
        assert [m.id for m in jobs.claim_pack_mates(s, first, "w1", limit=8)] == [cell[1]]  # cell[2] resumes alone
    with session_scope(db_url) as s:
        lone = jobs.claim(s, cell[2], "w2")
        assert jobs.claim_pack_mates(s, lone, "w2", limit=0) == []


def test_a_job_outside_any_sweep_packs_nothing(db_url, data_root):
    with session_scope(db_url) as s:
        job, _ = jobs.create_job(s, preset="mnist-fc", data_root=data_root)
        s.flush()
        assert jobs.claim_pack_mates(s, job, "w1", limit=8) == []


def test_a_learning_rate_sweeps_cells_pack_together_own_cell_first(db_url, data_root):
    request = SweepRequest(base={"preset": "mnist-fc"}, grid={"lr": [0.01, 0.05], "weight_decay": [0.0, 1e-4]},
                           seeds=2)
    with session_scope(db_url) as s:
        sweep = create_sweep(s, request, data_root=data_root)
        ids = sorted(j.id for j in sweep.jobs)
        cell = {j.id: j.cell_index for j in sweep.jobs}
    with session_scope(db_url) as s:
        first = jobs.claim(s, ids[0], "w1")
        mates = jobs.claim_pack_mates(s, first, "w1", limit=8)
        assert sorted(m.id for m in mates) == ids[1:]  # every cell: they differ only in lr and weight_decay
        assert cell[mates[0].id] == cell[ids[0]]  # its own cell's seed first
    with session_scope(db_url) as s:
        lone = jobs.claim(s, _sweep(db_url, data_root)[0][0], "w2")  # n_hidden cells do not pack with each other
        assert {m.cell_index for m in jobs.claim_pack_mates(s, lone, "w2", limit=8)} == {lone.cell_index}

"""Measured admission (worker/admission.py): the rule on fake measurements, the slots' shared ledger, and a real
`python -m worker --per-gpu auto` whose memory budget fits one job (two run one after another, the second given
back to the queue meanwhile) or two (they overlap)."""

from __future__ import annotations

import contextlib
import multiprocessing
import time

import psutil
import pytest
from support import WorkerProcess, private_lab

from shared.lab.specs import resolve
from shared.store import fleet
from worker import admission
from worker.admission import Decision, Ledger, Need, Rules, Running, decide
from worker.system import Measured, measure

RULES = Rules(budget_gb=None, margin_gb=0.5, busy_percent=90.0, settle_seconds=2.0)
GPU = Measured("GPU", free_gb=10.0, busy_percent=40.0)
JOB = Need(shared_gb=1.0, member_gb=0.5)


def settled(*gbs: float | None) -> list[Running]:
    """Jobs running here long enough to show in the measurement."""
    return [Running(job_id=i, gb=gb, age_seconds=60.0) for i, gb in enumerate(gbs, 1)]


def test_a_job_alone_on_the_worker_is_admitted_whatever_it_needs():
    full = Measured("GPU", free_gb=0.1, busy_percent=100.0)
    assert decide(Need(50.0, 5.0), 1, full, [], RULES).members == 1
    assert decide(None, 1, full, [], RULES).members == 1
    assert decide(JOB, 64, GPU, [], RULES).members == 17  # (10 - 0.5 margin - 1 shared) / 0.5 per member


def test_memory_admits_while_the_estimate_and_margin_fit_the_room():
    assert decide(JOB, 1, GPU, settled(8.0), RULES).members == 1  # 10 - 8 - 0.5 = 1.5 = 1 + 0.5
    held_back = decide(JOB, 1, GPU, settled(8.5), RULES)
    assert held_back.members == 0 and held_back.why.startswith("needs 1.500 GB for 1 member(s) + 0.5 GB margin; "
                                                               "1.500 GB room (GPU 10.000 GB measured free")
    assert "8.500 GB held by 1 job(s) running here" in held_back.why
    budget = Rules(budget_gb=4.0, margin_gb=0.0, busy_percent=90.0, settle_seconds=2.0)
    assert decide(JOB, 1, GPU, settled(2.5), budget).members == 1  # the budget, not the 10 GB measured, binds
    assert decide(JOB, 1, GPU, settled(2.6), budget).members == 0
    assert "CNNLAB_AUTO_MEMORY_GB 4" in decide(JOB, 1, GPU, settled(2.6), budget).why
    short = Measured("CPU", free_gb=2.0, busy_percent=10.0)  # the measurement binds below the budget
    assert decide(JOB, 1, short, settled(0.6), budget).members == 0  # 2 - 0.6 < 1.5, though 4 - 0.6 is not


def test_a_pack_takes_as_many_members_as_the_room_holds():
    assert decide(JOB, 64, GPU, settled(4.0), RULES).members == 9  # (10 - 4 - 0.5 - 1) / 0.5
    assert decide(JOB, 5, GPU, settled(4.0), RULES).members == 5  # at most what it asked for
    assert decide(JOB, 64, GPU, settled(8.5), RULES).members == 0


def test_a_busy_device_or_an_unsettled_job_holds_the_next_one_back():
    hot = Measured("GPU", free_gb=10.0, busy_percent=95.0)
    assert decide(JOB, 1, hot, settled(1.0), RULES) == Decision(0, "the GPU is 95% busy (CNNLAB_AUTO_BUSY_PERCENT 90)")
    young = [Running(job_id=7, gb=1.0, age_seconds=0.5)]
    assert decide(JOB, 1, GPU, young, RULES).why == "job 7 started here 0.5 s ago and is not in the measurement yet"
    off = Rules(budget_gb=None, margin_gb=0.5, busy_percent=100.0, settle_seconds=2.0)
    assert decide(JOB, 1, hot, young, off).members == 1  # 100: utilization never holds a job back
    unread = Measured("GPU", free_gb=10.0, busy_percent=None)
    assert decide(JOB, 1, unread, settled(1.0), RULES).members == 1


def test_a_job_of_unknown_memory_runs_only_alone():
    assert decide(None, 1, GPU, settled(1.0), RULES).members == 0
    assert "runs alone" in decide(None, 1, GPU, settled(1.0), RULES).why
    off = Rules(budget_gb=None, margin_gb=0.5, busy_percent=100.0, settle_seconds=2.0)
    assert decide(JOB, 1, GPU, settled(None), off).why == "a job of unknown memory runs here: nothing starts beside it"


def test_the_measurement_is_of_this_machine_without_a_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    now = measure(cpu_interval=0.05)
    assert now.device == "CPU" and now.free_gb > 0 and 0 <= now.busy_percent <= 100


def _hold_in_child(path_env: str, worker: str, job_id: int, gb: float, ready, done) -> None:
    import os

    os.environ["CNNLAB_CHECKPOINT_DIR"] = path_env
    ledger = Ledger(worker)
    with ledger.entries() as found:
        found[ledger.me] = {"job": job_id, "gb": gb, "at": time.time(), "born": psutil.Process().create_time()}
    ready.set()
    done.wait(30)


def test_the_ledger_is_shared_by_the_slots_and_forgets_a_slot_that_is_gone(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CHECKPOINT_DIR", str(tmp_path))
    ctx = multiprocessing.get_context("fork")  # a child slot process, without a fresh interpreter
    ready, done = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_in_child, args=(str(tmp_path), "w@h:1", 41, 1.5, ready, done))
    other.start()
    try:
        assert ready.wait(60)
        mine = Ledger("w@h:2")
        with mine.entries() as found:
            assert [(e["job"], e["gb"]) for e in found.values()] == [(41, 1.5)]
        assert Ledger("another@h:3").path != mine.path  # each worker (Celery node) has its own
    finally:
        done.set()
        other.join(30)
    with mine.entries() as found:
        assert found == {}  # its process ended: its memory is free again


@pytest.fixture
def measured(monkeypatch, tmp_path):
    """Measured admission with a fake device, a fake trainer's estimate and the notes recorded."""
    monkeypatch.setenv("CNNLAB_ADMIT", "measured")
    monkeypatch.setenv("CNNLAB_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("CNNLAB_AUTO_WAIT_SECONDS", "0.6")
    monkeypatch.setattr(admission, "POLL_SECONDS", 0.1)
    monkeypatch.setattr(admission, "_spec_to_admit", lambda job_id: resolve("mnist-fc"))
    monkeypatch.setattr(admission, "_need", lambda spec, env: JOB)
    monkeypatch.setattr(admission, "measure", lambda: GPU)
    notes = []
    monkeypatch.setattr(fleet, "hold", lambda url, job_id, why, ttl: notes.append((job_id, why)))
    monkeypatch.setattr(fleet, "unhold", lambda url, job_id: notes.append((job_id, None)))
    return notes


def test_a_job_without_room_is_declined_after_the_wait_and_says_why(measured):
    ledger = Ledger("w@h:1")
    with ledger.entries() as found:  # another live slot of this worker holds 8.5 GB (this process stands in for it)
        found["1"] = {"job": 40, "gb": 8.5, "at": time.time() - 60, "born": psutil.Process(1).create_time()}
    started = time.monotonic()
    with pytest.raises(admission.Declined), admission.admitted(41, "w@h:2", lambda spec: False):
        pytest.fail("admitted without room")
    assert 0.5 < time.monotonic() - started < 5
    assert measured == [(41, "worker w@h holds it back: needs 1.500 GB for 1 member(s) + 0.5 GB margin; 1.500 GB "
                             "room (GPU 10.000 GB measured free, 8.500 GB held by 1 job(s) running here)")]
    with ledger.entries() as found:
        assert set(found) == {"1"}  # nothing held for the declined job


def test_an_admitted_job_holds_its_members_memory_until_it_ends(measured):
    ledger = Ledger("w@h:1")
    with admission.admitted(42, "w@h:2", lambda spec: True) as admitted:
        assert admitted.members == 17
        admitted.settle(3)  # it claimed two pack mates
        with ledger.entries() as found:
            assert [(e["job"], e["gb"]) for e in found.values()] == [(42, 2.5)]  # 1 shared + 3 x 0.5
    with ledger.entries() as found:
        assert found == {}
    assert measured == [(42, None)]


def test_admission_off_admits_at_once(monkeypatch):
    monkeypatch.setenv("CNNLAB_ADMIT", "all")
    monkeypatch.setenv("CNNLAB_PACK_MAX", "7")
    with admission.admitted(43, "w@h:2", lambda spec: True) as admitted:
        assert admitted.members == 7 and admitted.ledger is None


def test_a_running_job_under_a_live_lease_skips_admission_but_an_orphan_is_admitted(monkeypatch, db_url):
    """A pack mate's own message (or a duplicate delivery) of a job that trains under a live lease goes to the claim,
    which skips it at once; held back, it would be requeued for as long as it trains. A lapsed lease is a takeover:
    that job is admitted like a queued one."""
    from datetime import timedelta

    from shared.store.db import session_scope
    from shared.store.models import Job, utcnow

    monkeypatch.setenv("CNNLAB_DATABASE_URL", db_url)
    spec = resolve("mnist-fc")
    with session_scope(db_url) as s:
        rows = [Job(name=n, model="fc2", dataset="mnist", spec=spec.model_dump(), status=st, heartbeat_at=beat)
                for n, st, beat in (("queued", "queued", None), ("training", "running", utcnow()),
                                    ("orphan", "running", utcnow() - timedelta(hours=1)))]
        s.add_all(rows)
        s.flush()
        queued, training, orphan = (j.id for j in rows)
    assert admission._spec_to_admit(queued) == spec and admission._spec_to_admit(orphan) == spec
    assert admission._spec_to_admit(training) is None


def test_a_device_that_cannot_be_measured_or_a_torn_ledger_does_not_drop_the_job(measured, monkeypatch):
    def broken():
        raise RuntimeError("NVML: GPU is lost")

    monkeypatch.setattr(admission, "measure", broken)
    ledger = Ledger("w@h:1")
    ledger.path.write_text('{"123": {"job": 4')  # a write cut short
    with admission.admitted(44, "w@h:2", lambda spec: True) as admitted:  # alone: no room known, still it runs
        assert admitted.members == 1
        with ledger.entries() as found:
            assert [e["job"] for e in found.values()] == [44]


def test_a_late_size_answer_is_not_taken_for_the_next_question():
    """The trainer's answer to an earlier question (past its timeout) waits in the socket: the next size() skips it."""
    import socket
    from multiprocessing.connection import Connection

    from worker import warm

    ours, theirs = socket.socketpair()
    trainer = object.__new__(warm.WarmTrainer)
    trainer.conn, trainer.asked, trainer.died = Connection(ours.detach()), 1, None
    other = Connection(theirs.detach())
    warm.send(other, warm.Sized(ask=1, shared_bytes=111, member_bytes=111))  # the first question's, late
    warm.send(other, warm.Sized(ask=2, shared_bytes=5, member_bytes=7))
    assert trainer.size({"model": "fc2"}, timeout=5) == warm.Sized(ask=2, shared_bytes=5, member_bytes=7)
    assert warm.receive(other) == warm.Size(spec={"model": "fc2"}, ask=2)


# --- through a real worker ---------------------------------------------------------------------------------------

SMALL = {"train_limit": 3000, "eval_every": 0, "test_limit": 200}  # mnist-cnn: ~1-3 s a job on 2 loaded cores
# Its evaluation chunk holds ~8x the activations (~7.6x the estimate); 3 epochs, so it still trains when the second
# POST's job arrives on a quiet machine.
LARGE = SMALL | {"test_limit": 2000, "epochs": 3}


@pytest.fixture(scope="module")
def lab(data_root, cache_root, tmp_path_factory):
    """A database, a Redis database and a var dir of its own."""
    with private_lab("admission", data_root, cache_root, tmp_path_factory) as api:
        yield api


def job_gb(data_root, overrides: dict) -> float:
    """What admission counts for one mnist-cnn job (the trainer's estimate, computed the same way here)."""
    from shared.train.memory import job_need

    return sum(job_need(resolve("mnist-cnn", overrides), data_root)) / 2**30


@contextlib.contextmanager
def auto_worker(lab, budget_gb: float):
    """`--per-gpu auto` with two slots (both trainers warm), a memory budget, no margin, and utilization not counted
    (this machine is shared: its CPU % says nothing about these jobs)."""
    env = lab.env | {"CNNLAB_AUTO_SLOTS": "2", "CNNLAB_AUTO_MEMORY_GB": f"{budget_gb:.9f}", "CNNLAB_AUTO_MARGIN_GB": "0",
                     "CNNLAB_AUTO_BUSY_PERCENT": "100", "CNNLAB_AUTO_WAIT_SECONDS": "0.5"}
    log = lab.var / "worker.log"
    w = WorkerProcess(env, log, "auto@localhost", queues="cpu", args=("--per-gpu", "auto"))
    try:
        deadline = time.monotonic() + 90
        while log.read_text(errors="replace").count("cnnlab trainer") < 2:
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        yield w
    finally:
        w.stop()


def two_jobs(lab, overrides: dict) -> tuple[list[dict], set[str]]:
    """Two jobs posted back to back: their rows once both ended, and the waiting reasons seen meanwhile."""
    ids = [lab.post("/jobs", json={"preset": "mnist-cnn", "overrides": overrides | {"seed": s}}).json()["id"]
           for s in (1, 2)]
    reasons, deadline = set(), time.monotonic() + 120
    while True:
        rows = [lab.get(f"/jobs/{i}").json() for i in ids]
        reasons |= {r["waiting"] for r in rows if r.get("waiting")}
        if all(r["status"] in ("succeeded", "failed", "cancelled") for r in rows):
            assert [r["status"] for r in rows] == ["succeeded"] * 2, rows
            return rows, reasons
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


def test_a_budget_that_fits_one_job_runs_two_one_after_another_and_two_that_fit_side_by_side(lab, data_root):
    large, small = job_gb(data_root, LARGE), job_gb(data_root, SMALL)
    budget = 1.5 * large
    assert 2 * small < budget < 2 * large
    with auto_worker(lab, budget):
        (a, b), reasons = two_jobs(lab, LARGE)
        first, second = sorted((a, b), key=lambda j: j["started_at"])
        assert second["started_at"] >= first["finished_at"]  # one after another
        assert a["attempts"] == b["attempts"] == 1  # held back and given back to the queue: never claimed twice
        assert any("holds it back: needs" in r for r in reasons), reasons

        (c, d), _ = two_jobs(lab, SMALL)
        assert max(c["started_at"], d["started_at"]) < min(c["finished_at"], d["finished_at"])  # side by side
        assert c["worker"].split(":")[1] != d["worker"].split(":")[1]  # in two slots
    log = (lab.var / "worker.log").read_text()
    assert f"job {second['id']} waits: needs" in log and f"job {second['id']} goes back to its queue" in log
    assert "celery.exceptions.Reject" not in log  # routine: no traceback per job given back

"""The warm trainer's parts on their own: its messages, its per-job output, and a real trainer process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection

import pytest
from support import REPO

from worker import warm
from worker.processes import alive


def test_messages_round_trip_over_a_socketpair():
    a, b = socket.socketpair()
    ours, theirs = Connection(a.detach()), Connection(b.detach())
    sent = [warm.Ready(pid=7), warm.Hand(job_id=3, resume=("/x/epoch-001.pt", "ab" * 32)), warm.Hand(job_id=4),
            warm.Started(job_id=3), warm.Done(job_id=3, code=1), warm.Size(spec={"model": "cnn"}),
            warm.Sized(shared_bytes=5, member_bytes=7), warm.Sized()]
    for msg in sent:
        warm.send(ours, msg)
    assert [warm.receive(theirs) for _ in sent] == sent
    ours.close()
    with pytest.raises(EOFError):
        warm.receive(theirs)


def test_output_to_points_fd_1_and_2_at_the_job_log_and_back(tmp_path):
    code = (f"import os, sys; from pathlib import Path; from worker.serve import output_to\n"
            f"with output_to(Path({str(tmp_path / 'log.txt')!r})):\n"
            f"    print('from print'); print('from stderr', file=sys.stderr); os.write(2, b'from C\\n')\n"
            f"print('after')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "log.txt").read_text() == "from print\nfrom stderr\nfrom C\n"
    assert out.stdout == "after\n"


@pytest.fixture
def trainer_env(tmp_path, monkeypatch):
    """A trainer process whose database is a fresh SQLite file with no jobs in it."""
    monkeypatch.setenv("CNNLAB_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("CNNLAB_DATABASE_URL", raising=False)
    monkeypatch.delenv("CNNLAB_CHECKPOINT_DIR", raising=False)
    return tmp_path


def test_a_real_trainer_reports_a_failed_job_and_dies_when_killed(trainer_env):
    from shared.lab.specs import resolve
    from shared.train.memory import job_need

    trainer = warm.WarmTrainer()
    try:
        assert trainer.wait(0.01) is None and trainer.alive()  # still warming up, no job
        spec = resolve("mnist-cnn", {"train_limit": 1000})  # sized for admission before a job, once warm
        sized = trainer.size(spec.model_dump(mode="json"))
        assert (sized.shared_bytes, sized.member_bytes) == job_need(spec)
        assert trainer.size(resolve("mnist-cnn", {"dataset": "no-such-folder"}).model_dump(mode="json")) == warm.Sized(ask=2)
        trainer.hand(12345, [])  # not in the database: the job fails inside the trainer
        assert trainer.wait(120) == 1
        log = (trainer_env / "checkpoints" / "12345" / "log.txt").read_text()
        assert "Traceback" in log and "warm in" not in log  # the job's own output, not the start-up line
        assert trainer.alive() and trainer.job_id is None  # a failed job leaves it up: the slot decides
        pid = trainer.proc.pid
    finally:
        trainer.kill()
    assert not trainer.alive() and not alive(pid)
    assert trainer.wait(0) not in (None, 0)  # a dead trainer never reports a job done


def test_a_trainer_takes_the_threads_it_is_given(tmp_path):
    """CNNLAB_TRAINER_THREADS sets torch's CPU threads in a warm trainer (and in a fresh one, through the same
    `use_threads`), so trainers sharing a machine do not each take every core."""
    code = "from worker.serve import warm_up; warm_up(); import torch; print(torch.get_num_threads())"
    env = {**os.environ, "CNNLAB_TRAINER_THREADS": "1", "CNNLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "1"

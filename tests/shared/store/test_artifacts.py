"""The artifact store on each backend: a directory, S3 (moto in server mode, a stand-in for S3/MinIO), and the
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from shared.store import artifacts


@pytest.fixture(params=["file", "s3", "db-sqlite", pytest.param("db-pg", marks=pytest.mark.services)])
def store_url(request, tmp_path, monkeypatch) -> str:
    """CNNLAB_ARTIFACT_STORE for one backend; the database store on SQLite and on PostgreSQL."""
    if request.param == "file":
        url = (tmp_path / "store").as_uri()
    elif request.param == "s3":
        moto = request.getfixturevalue("moto")
        for name, value in moto.env.items():
            monkeypatch.setenv(name, value)
        url = f"{moto.url}/{tmp_path.name}"  # a prefix of the test's own in the session's bucket
    else:
        monkeypatch.setenv("CNNLAB_DATABASE_URL", request.getfixturevalue(f"{request.param[3:]}_url"))
        url = "db://"
    monkeypatch.setenv("CNNLAB_ARTIFACT_STORE", url)
    return url


def _file(tmp_path: Path, name: str, size: int, seed: int = 0) -> Path:
    path = tmp_path / name
    path.write_bytes(hashlib.sha256(str(seed).encode()).digest() * (size // 32) + b"x" * (size % 32))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_upload_reads_back_whole_and_verified(store_url, tmp_path):
    local = _file(tmp_path, "epoch-001.pt", 2_500_000)  # several 1 MiB chunks in the database store
    key = artifacts.artifact_key(7, local.name)
    artifacts.upload(local, key)
    assert artifacts.store().url == store_url and artifacts.store().exists(key)
    assert b"".join(artifacts.stream_verified(key, _sha(local))) == local.read_bytes()
    copy = artifacts.download_verified(key, _sha(local), tmp_path / "elsewhere" / "epoch-001.pt")
    assert copy.read_bytes() == local.read_bytes()
    with artifacts.open_artifact(7, "epoch-001.pt") as f:
        assert f.read(10) == local.read_bytes()[:10]


def test_a_wrong_hash_or_a_missing_key_is_refused(store_url, tmp_path):
    local = _file(tmp_path, "epoch-002.pt", 1000)
    key = artifacts.artifact_key(8, local.name)
    artifacts.upload(local, key)
    with pytest.raises(artifacts.CorruptArtifact):
        artifacts.stream_verified(key, "0" * 64)
    dest = tmp_path / "dl" / "epoch-002.pt"
    with pytest.raises(artifacts.CorruptArtifact):
        artifacts.download_verified(key, "0" * 64, dest)
    assert not dest.exists() and list(dest.parent.iterdir()) == []  # no half file, no temp file left
    with pytest.raises(artifacts.MissingArtifact):
        artifacts.check(artifacts.artifact_key(8, "epoch-099.pt"), "0" * 64)
    with pytest.raises(ValueError):
        artifacts.artifact_key(8, "../../etc/passwd")


def test_an_overwrite_replaces_the_artifact_and_readers_never_see_part_of_one(store_url, tmp_path):
    key = artifacts.artifact_key(9, "log.txt")
    versions = [_file(tmp_path, f"v{i}", 1_200_000 + i * 1000, seed=i) for i in range(4)]
    hashes = {_sha(v) for v in versions}
    artifacts.upload(versions[0], key)
    seen, errors = [], []

    def read() -> None:
        for _ in range(6):
            try:
                seen.append(artifacts.sha256_of(key))
            except Exception as exc:
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for v in versions[1:]:
        artifacts.upload(v, key)
    reader.join()
    if store_url.startswith("s3"):  # s3fs notices an object replaced under a reader (its ETag) and says so
        assert all(type(e).__name__ == "FileExpired" for e in errors), errors
    else:
        assert not errors
    if not store_url.startswith("db"):  # a chunk-at-a-time reader may straddle two versions: its hash says so
        assert set(seen) <= hashes
    assert artifacts.sha256_of(key) == _sha(versions[-1])


def test_delete_one_and_delete_a_job_s_artifacts(store_url, tmp_path):
    for job, name in ((10, "epoch-001.pt"), (10, "epoch-002.pt"), (10, "log.txt"), (11, "epoch-001.pt")):
        artifacts.upload(_file(tmp_path, name, 100), artifacts.artifact_key(job, name))
    artifacts.delete(artifacts.artifact_key(10, "epoch-001.pt"))
    artifacts.delete(artifacts.artifact_key(10, "epoch-001.pt"))  # already gone: fine
    assert not artifacts.store().exists(artifacts.artifact_key(10, "epoch-001.pt"))
    assert artifacts.delete_job(10) == 2
    assert not artifacts.store().exists(artifacts.artifact_key(10, "log.txt"))
    assert artifacts.store().exists(artifacts.artifact_key(11, "epoch-001.pt"))  # another job's are kept
    assert artifacts.delete_job(10) == 0


def test_a_log_is_uploaded_read_and_continued_elsewhere(store_url, tmp_path):
    assert artifacts.read_log(12) is None
    local = tmp_path / "a" / "log.txt"
    local.parent.mkdir()
    local.write_text("attempt 1\n")
    artifacts.upload_log(12, local)
    assert artifacts.read_log(12) == "attempt 1\n"
    other = tmp_path / "b" / "log.txt"  # another machine's scratch directory
    other.parent.mkdir()
    assert artifacts.fetch_log(12, other) and other.read_text() == "attempt 1\n"

"""Alembic builds the schema from empty on both backends, matches the models, and downgrades cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from support import alembic_config

from shared.store.models import Base


def _roundtrip(url: str) -> None:
    cfg = alembic_config(url)
    command.upgrade(cfg, "head")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert {"jobs", "epoch_metrics", "step_losses", "checkpoints", "results"} <= set(inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    command.downgrade(cfg, "base")
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    engine.dispose()


def test_upgrade_empty_sqlite(tmp_path):
    _roundtrip(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_upgrade_empty_postgresql():
    from support import drop_postgres_database, new_postgres_database

    url = new_postgres_database()
    try:
        _roundtrip(url)
    finally:
        drop_postgres_database(url)

"""artifact store: checkpoint keys, the attempt log, database-stored artifact chunks

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-28 20:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_attempts',
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('worker', sa.String(length=200), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('start_epoch', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_attempts_job_id_jobs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id', 'attempt', name=op.f('pk_job_attempts')),
    )
    op.create_table(
        'artifact_chunks',
        sa.Column('key', sa.String(length=512), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('key', 'seq', name=op.f('pk_artifact_chunks')),
    )
    # Checkpoints are recorded by their key in the artifact store, never by a machine's path. Rows written
    # before this point at a worker's local file: their key becomes jobs/<id>/<file name>, which the store has
    # only if the files are copied there (docs/architecture.md, "Artifact store").
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.alter_column('path', new_column_name='key', existing_type=sa.String(length=1024),
                              existing_nullable=False)
    checkpoints = sa.table('checkpoints', sa.column('id', sa.Integer), sa.column('job_id', sa.Integer),
                           sa.column('key', sa.String))
    conn = op.get_bind()
    for row in conn.execute(sa.select(checkpoints.c.id, checkpoints.c.job_id, checkpoints.c.key)).all():
        if row.key.startswith('/'):
            name = row.key.rsplit('/', 1)[-1]
            conn.execute(checkpoints.update().where(checkpoints.c.id == row.id)
                         .values(key=f'jobs/{row.job_id}/{name}'))


def downgrade() -> None:
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.alter_column('key', new_column_name='path', existing_type=sa.String(length=1024),
                              existing_nullable=False)
    op.drop_table('artifact_chunks')
    op.drop_table('job_attempts')

"""system metrics: the supervisor's samples of a job's CPU, memory and GPU use

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 17:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'system_metrics',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.Column('cpu_percent', sa.Float(), nullable=False),
        sa.Column('rss_mb', sa.Float(), nullable=False),
        sa.Column('gpu_percent', sa.Float(), nullable=True),
        sa.Column('gpu_memory_mb', sa.Float(), nullable=True),
        sa.Column('load_1m', sa.Float(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_system_metrics_job_id_jobs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_system_metrics')),
    )
    with op.batch_alter_table('system_metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_system_metrics_job_id'), ['job_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('system_metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_system_metrics_job_id'))
    op.drop_table('system_metrics')

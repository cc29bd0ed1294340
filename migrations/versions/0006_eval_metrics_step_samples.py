"""eval metrics within epochs, samples seen of step losses

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-28 20:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'eval_metrics',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('samples_seen', sa.BigInteger(), nullable=False),
        sa.Column('epoch', sa.Float(), nullable=False),
        sa.Column('step', sa.BigInteger(), nullable=False),
        sa.Column('test_loss', sa.Float(), nullable=False),
        sa.Column('test_accuracy', sa.Float(), nullable=False),
        sa.Column('test_samples', sa.Integer(), nullable=False),
        sa.Column('full', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_eval_metrics_job_id_jobs'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_eval_metrics')),
        sa.UniqueConstraint('job_id', 'samples_seen', name=op.f('uq_eval_metrics_job_id')),
    )
    with op.batch_alter_table('eval_metrics', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_metrics_job_id'), ['job_id'], unique=False)
    with op.batch_alter_table('step_losses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('samples_seen', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('step_losses', schema=None) as batch_op:
        batch_op.drop_column('samples_seen')
    with op.batch_alter_table('eval_metrics', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_eval_metrics_job_id'))
    op.drop_table('eval_metrics')

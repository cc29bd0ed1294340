"""idempotency keys, dispatch times

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 17:45:19.498161
"""
from alembic import op
import sqlalchemy as sa



revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_jobs_idempotency_key'), ['idempotency_key'])



def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_jobs_idempotency_key'), type_='unique')
        batch_op.drop_column('idempotency_key')
        batch_op.drop_column('dispatched_at')


"""job tags, notes, archived

Revision ID: 0007
Revises: 0003
Create Date: 2026-11-28 20:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tags', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('notes', sa.Text(), server_default=sa.text("''"), nullable=False))
        batch_op.add_column(sa.Column('archived', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f('ix_jobs_archived_created_at'), ['archived', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_archived_created_at'))
        batch_op.drop_column('archived')
        batch_op.drop_column('notes')
        batch_op.drop_column('tags')

"""artifact_blobs: copies of small run artifacts in the database, for workers and apps on
other machines (db/artifact_store.py)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 22:30:00

Artifact paths written from now on are relative to LIST_DATA_DIR; older absolute paths keep
working as they are.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'artifact_blobs',
        sa.Column('artifact_id', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['artifact_id'], ['artifacts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('artifact_id'),
    )


def downgrade() -> None:
    op.drop_table('artifact_blobs')

"""queue under concurrency: retry back-off, one artifact per (run, kind, round), 64-bit sizes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 21:55:00

- runs.not_before: a run re-queued after a transient error is not claimed before then.
- artifacts: duplicate (run, kind, round) rows (possible before: delete-then-insert without
  a key) are dropped, newest kept, then a unique index on (run_id, kind, coalesce(round, -1))
  lets add_artifact upsert.
- artifacts.bytes becomes BIGINT (a 3 GiB artifact overflowed PostgreSQL's INTEGER). On
  SQLite the table is copied (batch mode); nothing references artifacts, so the copy
  cascades nowhere.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

KEY = ['run_id', 'kind', sa.text('coalesce(round, -1)')]


def upgrade() -> None:
    op.add_column('runs', sa.Column('not_before', sa.DateTime(), nullable=True))
    op.execute(
        "DELETE FROM artifacts WHERE id NOT IN ("
        " SELECT max(id) FROM artifacts GROUP BY run_id, kind, coalesce(round, -1))"
    )
    with op.batch_alter_table('artifacts') as batch:
        batch.alter_column('bytes', existing_type=sa.Integer(), type_=sa.BigInteger(),
                           existing_nullable=False)
    op.create_index('uq_artifacts_run_kind_round', 'artifacts', KEY, unique=True)


def downgrade() -> None:
    op.drop_index('uq_artifacts_run_kind_round', table_name='artifacts')
    with op.batch_alter_table('artifacts') as batch:
        batch.alter_column('bytes', existing_type=sa.BigInteger(), type_=sa.Integer(),
                           existing_nullable=False)
    op.drop_column('runs', 'not_before')

"""runs.number: a run's number within its project and kind, the one people see

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 00:40:00

Run ids are global, and the background embedding and prediction jobs took ids too, so a
user's first training run was "Run #2". Existing runs are numbered in id order.
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('number', sa.Integer(), nullable=True))
    runs = sa.table('runs', sa.column('id', sa.Integer()), sa.column('project_id', sa.Integer()),
                    sa.column('kind', sa.String()), sa.column('number', sa.Integer()))
    bind = op.get_bind()
    seen: dict[tuple[int, str], int] = {}
    for rid, project_id, kind in bind.execute(
            sa.select(runs.c.id, runs.c.project_id, runs.c.kind).order_by(runs.c.id)).all():
        seen[(project_id, kind)] = seen.get((project_id, kind), 0) + 1
        bind.execute(runs.update().where(runs.c.id == rid)
                     .values(number=seen[(project_id, kind)]))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('number')

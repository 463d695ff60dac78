"""a frequency rule keeps the latest starts of its pending visits, so a visit decides its window
without counting it from the visits

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for the rows kept before: not known, learnt at the next count of the window.
    with op.batch_alter_table("visit_rule_counts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latest_starts", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("visit_rule_counts", schema=None) as batch_op:
        batch_op.drop_column("latest_starts")

"""what a rule of one shop or source, and a frequency rule, kept of each contact; and the contact's
writes, which tell whether it still holds

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("contact_visit_counts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("writes", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "visit_rule_counts",
        sa.Column("rule_id", _ID, primary_key=True),
        sa.Column("contact_id", _ID, primary_key=True),
        sa.Column("writes", sa.BigInteger(), nullable=False),
        sa.Column("counted", sa.BigInteger()),
        sa.Column("pending", sa.BigInteger()),
        sa.Column("pending_first", sa.DateTime(timezone=True)),
        sa.Column("pending_last", sa.DateTime(timezone=True)),
        sa.Column("fired", sa.BigInteger()),
        sa.Column("fired_visit", sa.BigInteger()),
    )


def downgrade() -> None:
    op.drop_table("visit_rule_counts")
    with op.batch_alter_table("contact_visit_counts", schema=None) as batch_op:
        batch_op.drop_column("writes")

"""visit counts per account (in slots) and per contact

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_visit_counts",
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id", "slot"),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visit_count", sa.BigInteger(), server_default="0", nullable=False))
    # Counts for the visits already there.
    op.execute(
        "INSERT INTO account_visit_counts (account_id, slot, count) "
        "SELECT account_id, 0, count(*) FROM visits GROUP BY account_id"
    )
    op.execute("UPDATE contacts SET visit_count = (SELECT count(*) FROM visits WHERE visits.contact_id = contacts.id)")


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("visit_count")
    op.drop_table("account_visit_counts")

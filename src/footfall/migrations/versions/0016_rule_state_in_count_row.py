"""what rules keep of a contact moves into its count row (contact_visit_counts.rule_state), which a
visit's count writes anyway, from a table of its own that each visit read and upserted beside it

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Nothing is carried over: a contact without kept state is counted afresh at its next visit
    # under rules, once, as after any delete.
    op.drop_table("visit_rule_counts")
    with op.batch_alter_table("contact_visit_counts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule_state", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("contact_visit_counts", schema=None) as batch_op:
        batch_op.drop_column("rule_state")
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
        sa.Column("latest_starts", sa.Text()),
    )

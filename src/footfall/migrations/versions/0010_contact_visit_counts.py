"""contact_visit_counts: a contact's kept visit count in a row of its own, off the contact's row

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_visit_counts",
        sa.Column("contact_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO contact_visit_counts (contact_id, count) "
               "SELECT id, visit_count FROM contacts WHERE visit_count <> 0")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("visit_count")


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visit_count", sa.BigInteger(), server_default="0", nullable=False))
    op.execute("UPDATE contacts SET visit_count = coalesce((SELECT count FROM contact_visit_counts "
               "WHERE contact_visit_counts.contact_id = contacts.id), 0)")
    op.drop_table("contact_visit_counts")

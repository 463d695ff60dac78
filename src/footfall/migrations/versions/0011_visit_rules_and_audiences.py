"""visit rules (their firings and each contact's standing) and audiences: each contact's first and
last visit, and its account, kept beside its visit count

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("contact_visit_counts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", _ID, sa.ForeignKey("accounts.id", ondelete="CASCADE",
                                                                      name="fk_contact_visit_counts_account")))
        batch_op.add_column(sa.Column("first_visit_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("last_visit_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE contact_visit_counts SET "
               "account_id = (SELECT account_id FROM contacts WHERE contacts.id = contact_visit_counts.contact_id), "
               "first_visit_at = (SELECT min(starts_at) FROM visits WHERE visits.contact_id = contact_visit_counts.contact_id), "
               "last_visit_at = (SELECT max(starts_at) FROM visits WHERE visits.contact_id = contact_visit_counts.contact_id)")
    with op.batch_alter_table("contact_visit_counts", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=_ID, nullable=False)
        batch_op.create_index("ix_contact_visit_counts_account_last", ["account_id", "last_visit_at"])
        batch_op.create_index("ix_contact_visit_counts_account_count", ["account_id", "count"])

    op.create_table(
        "visit_rules",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("uuid", sa.Uuid(), nullable=False, unique=True),
        sa.Column("account_id", _ID, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("every", sa.BigInteger()),
        sa.Column("at", sa.Text()),
        sa.Column("count", sa.BigInteger()),
        sa.Column("within_days", sa.Integer()),
        sa.Column("after_days", sa.Integer()),
        sa.Column("min_visits", sa.BigInteger()),
        sa.Column("shop_id", _ID, sa.ForeignKey("shops.id", ondelete="CASCADE")),
        sa.Column("source", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_visit_rules_account_id", "visit_rules", ["account_id", "id"])
    op.create_table(
        "visit_rule_firings",
        sa.Column("rule_id", _ID, sa.ForeignKey("visit_rules.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("contact_id", _ID, sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("count", sa.BigInteger(), primary_key=True),
        sa.Column("visit_id", sa.BigInteger(), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_visit_rule_firings_contact_id", "visit_rule_firings", ["contact_id"])
    op.create_table(
        "visit_rule_contacts",
        sa.Column("rule_id", _ID, primary_key=True),
        sa.Column("contact_id", _ID, primary_key=True),
        sa.Column("last_visit_at", sa.DateTime(timezone=True)),
        sa.Column("lapsed_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("visit_rule_contacts")
    op.drop_table("visit_rule_firings")
    op.drop_table("visit_rules")
    with op.batch_alter_table("contact_visit_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_visit_counts_account_count")
        batch_op.drop_index("ix_contact_visit_counts_account_last")
        batch_op.drop_column("last_visit_at")
        batch_op.drop_column("first_visit_at")
        batch_op.drop_column("account_id")

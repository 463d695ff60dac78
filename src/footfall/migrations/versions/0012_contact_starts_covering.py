"""visit rules on the write path: a contact's visits counted from an index alone, firings without a
foreign key to their rule

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's foreign keys have no names of their own: batch mode finds this one by this convention.
_NAMED = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _rule_key_name() -> str:
    if op.get_context().dialect.name == "postgresql":
        return "visit_rule_firings_rule_id_fkey"  # PostgreSQL's own name for it
    return "fk_visit_rule_firings_rule_id_visit_rules"


def upgrade() -> None:
    op.drop_index("ix_visits_contact_starts", table_name="visits")
    op.create_index("ix_visits_contact_starts", "visits", ["contact_id", "starts_at", "shop_id", "source"],
                    postgresql_include=["id"])
    with op.batch_alter_table("visit_rule_firings", naming_convention=_NAMED) as batch_op:
        batch_op.drop_constraint(_rule_key_name(), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("visit_rule_firings", naming_convention=_NAMED) as batch_op:
        batch_op.create_foreign_key(_rule_key_name(), "visit_rules", ["rule_id"], ["id"], ondelete="CASCADE")
    op.drop_index("ix_visits_contact_starts", table_name="visits")
    op.create_index("ix_visits_contact_starts", "visits", ["contact_id", "starts_at"])

"""a firing writes no foreign key check and no second index: visit_rule_firings loses its foreign
key to contacts and its index on contact_id (a contact's delete removes its firings by the key)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 02:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's foreign keys have no names of their own: batch mode finds this one by this convention.
_NAMED = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _contact_key_name() -> str:
    if op.get_context().dialect.name == "postgresql":
        return "visit_rule_firings_contact_id_fkey"  # PostgreSQL's own name for it
    return "fk_visit_rule_firings_contact_id_contacts"


def upgrade() -> None:
    op.drop_index("ix_visit_rule_firings_contact_id", table_name="visit_rule_firings")
    with op.batch_alter_table("visit_rule_firings", naming_convention=_NAMED) as batch_op:
        batch_op.drop_constraint(_contact_key_name(), type_="foreignkey")


def downgrade() -> None:
    # A firing recorded while its rule was deleted outlives the rule, and a contact's delete finds
    # its firings by the contact's account's rules: such rows may have outlived their contact too.
    op.execute("DELETE FROM visit_rule_firings WHERE contact_id NOT IN (SELECT id FROM contacts)")
    with op.batch_alter_table("visit_rule_firings", naming_convention=_NAMED) as batch_op:
        batch_op.create_foreign_key(_contact_key_name(), "contacts", ["contact_id"], ["id"], ondelete="CASCADE")
    op.create_index("ix_visit_rule_firings_contact_id", "visit_rule_firings", ["contact_id"])

"""a contact's first and last visit: an index on each contact's visit starts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 14:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_visits_contact_starts", "visits", ["contact_id", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_visits_contact_starts", table_name="visits")

"""a shop's visits by start: the list filtered by a shop and a range of starts_at reads its matches alone

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 05:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_visits_shop_starts", "visits", ["shop_id", "starts_at", "id"],
                    postgresql_include=["created_at", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_visits_shop_starts", table_name="visits")

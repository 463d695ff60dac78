"""anonymous contacts: a contact's email may be empty until it is claimed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 11:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=255), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM contacts WHERE email IS NULL")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=255), nullable=False)

"""visit changes: updated_at, a change position on every visit, tombstones of deleted visits, and
indexes for the list's filters and sorts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 12:20:00

A visit's change position (change_xid, change_seq) moves with every write of the visit and orders
the changes feed. On PostgreSQL change_xid is the writing transaction's id and change_seq comes from
a sequence: the feed reads only below the oldest transaction still running, so a transaction that
commits late cannot land behind a cursor already handed out. On SQLite writers take turns, so
change_seq alone, taken from a counter by triggers while the writer holds the lock, is commit order;
change_xid stays 0.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CURRENT_XID = "(pg_current_xact_id()::text::bigint)"

# SQLite: both statements of a trigger run per row, so each changed row takes the next number.
SQLITE_NEXT_CHANGE = """
    UPDATE visit_change_counter SET value = value + 1;
    UPDATE {table} SET change_seq = (SELECT value FROM visit_change_counter) WHERE id = NEW.id;
"""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("CREATE SEQUENCE visit_change_seq AS bigint")
        change_xid = sa.Column("change_xid", sa.BigInteger(), nullable=False,
                               server_default=sa.text(CURRENT_XID))
        change_seq = sa.Column("change_seq", sa.BigInteger(), nullable=False,
                               server_default=sa.text("nextval('visit_change_seq')"))
    else:
        change_xid = sa.Column("change_xid", sa.BigInteger(), nullable=False, server_default="0")
        change_seq = sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0")

    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True)))
        batch_op.add_column(change_xid)
        batch_op.add_column(change_seq)
    op.execute("UPDATE visits SET updated_at = created_at")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.alter_column("updated_at", nullable=False)
        batch_op.create_index("ix_visits_account_changes", ["account_id", "change_xid", "change_seq"])
        batch_op.create_index("ix_visits_account_updated", ["account_id", "updated_at", "id"])
        # The list's filters, each read in created_at order off its own index. A shop belongs to one
        # account, so shop_id leads its index as contact_id leads the contact's (which also serves
        # the foreign key, as the plain shop_id index did).
        batch_op.drop_index("ix_visits_shop_id")
        batch_op.create_index("ix_visits_shop_created", ["shop_id", "created_at", "id"])
        batch_op.create_index("ix_visits_account_source_created", ["account_id", "source", "created_at", "id"])
        batch_op.create_index("ix_visits_account_starts", ["account_id", "starts_at", "id"])

    op.create_table(
        "visit_tombstones",
        sa.Column("id", BIGINT, primary_key=True),
        sa.Column("account_id", BIGINT, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(255)),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("change_xid", sa.BigInteger(), nullable=False,
                  server_default=sa.text(CURRENT_XID) if postgresql else "0"),
        sa.Column("change_seq", sa.BigInteger(), nullable=False,
                  server_default=sa.text("nextval('visit_change_seq')") if postgresql else "0"),
    )
    op.create_index("ix_visit_tombstones_account_changes", "visit_tombstones",
                    ["account_id", "change_xid", "change_seq"])
    op.create_index("ix_visit_tombstones_account_deleted", "visit_tombstones", ["account_id", "deleted_at"])

    if not postgresql:
        op.execute("CREATE TABLE visit_change_counter (value BIGINT NOT NULL)")
        op.execute("UPDATE visits SET change_seq = id")
        op.execute("INSERT INTO visit_change_counter (value) SELECT coalesce(max(id), 0) FROM visits")
        for name, event, table in (
            ("visits_change_on_insert", "INSERT", "visits"),
            ("visits_change_on_update", "UPDATE OF updated_at", "visits"),
            ("visit_tombstones_change_on_insert", "INSERT", "visit_tombstones"),
        ):
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN"
                       f"{SQLITE_NEXT_CHANGE.format(table=table)}END")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if not postgresql:
        for name in ("visits_change_on_insert", "visits_change_on_update", "visit_tombstones_change_on_insert"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE visit_change_counter")
    op.drop_table("visit_tombstones")
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_account_starts")
        batch_op.drop_index("ix_visits_account_source_created")
        batch_op.drop_index("ix_visits_shop_created")
        batch_op.create_index("ix_visits_shop_id", ["shop_id"])
        batch_op.drop_index("ix_visits_account_updated")
        batch_op.drop_index("ix_visits_account_changes")
        batch_op.drop_column("change_seq")
        batch_op.drop_column("change_xid")
        batch_op.drop_column("updated_at")
    if postgresql:
        op.execute("DROP SEQUENCE visit_change_seq")

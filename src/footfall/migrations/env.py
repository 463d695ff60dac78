"""Alembic runs on the connection footfall.db.migrate.migrate hands it (see _alembic_config)."""

from alembic import context

from footfall.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

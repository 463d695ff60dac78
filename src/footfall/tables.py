"""Tables. Every row that belongs to a customer carries account_id, and every query filters on it.

No Python-side defaults: statements give every value (db/statement.py refuses one that would rely on
a default SQLAlchemy's execution would have filled in)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)

from footfall.db.types import BigIntPK, UTCDateTime

metadata = MetaData()


def _id() -> Column:
    return Column("id", BigIntPK, primary_key=True)


def _account_id() -> Column:
    return Column("account_id", BigIntPK, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)


accounts = Table(
    "accounts",
    metadata,
    _id(),
    Column("uuid", Uuid, unique=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Moved by every move of a visit's start: what the stats cache (stats/cache.py) cannot follow
    # on the changes feed, which shows a visit only as it is now.
    Column("visit_epoch", BigInteger, nullable=False, server_default="0"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    _id(),
    Column("uuid", Uuid, unique=True, nullable=False),
    Column("account_id", BigIntPK, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255)),
    # SHA-256 hex of the token; the token itself is never stored.
    Column("token_hash", String(64), unique=True, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Column("read_only", Boolean, nullable=False, server_default=false()),
    # Updated at most once a minute per token, so reads stay reads.
    Column("last_used_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
)

shops = Table(
    "shops",
    metadata,
    _id(),
    Column("uuid", Uuid, unique=True, nullable=False),
    _account_id(),
    Column("name", String(255), nullable=False),
    Column("type", String(16), nullable=False),
    Column("reference", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_shops_account_name", "account_id", "name"),
)

contacts = Table(
    "contacts",
    metadata,
    _id(),
    Column("uuid", Uuid, unique=True, nullable=False),
    _account_id(),
    # Stored lower-cased, so one address is one contact per account; NULL for an anonymous
    # contact until it is claimed (NULLs never collide in the unique key).
    Column("email", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("account_id", "email", name="uq_contacts_account_email"),
    Index("ix_contacts_account_created", "account_id", "created_at", "id"),
)

# A contact's visit count, kept in the transaction of every visit write (a list by contact needs no
# count(*)). A row of its own, not a column of the contact: every visit read joins the contact's row,
# and a count kept there left a chain of old row versions that those reads walked (docs/scaling.md).
# No row means 0. The first and last visit's starts_at, kept beside the count, are what audiences
# filter and sort on; account_id lets an audience's filter read this table alone.
contact_visit_counts = Table(
    "contact_visit_counts",
    metadata,
    Column("contact_id", BigIntPK, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("account_id", BigIntPK, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("first_visit_at", UTCDateTime),
    Column("last_visit_at", UTCDateTime),
    # Moved by every write of the contact's visits (each visit added or deleted, each start or source
    # changed): what rules kept of the contact (rule_state) holds only while this is what it was kept at.
    Column("writes", BigInteger, nullable=False, server_default="0"),
    # What the account's rules of one shop or source, and its frequency rules, kept of the contact at
    # its last visit under them, so the next one reads it here rather than counting the contact's
    # visits: a JSON object written and read by rules.repository (KeptState) alone.
    Column("rule_state", Text),
    Index("ix_contact_visit_counts_account_last", "account_id", "last_visit_at"),
    Index("ix_contact_visit_counts_account_count", "account_id", "count"),
)

# An account's visit count, spread over a few rows (slots) so concurrent creates rarely wait on one
# another's row lock; the count is their sum.
account_visit_counts = Table(
    "account_visit_counts",
    metadata,
    Column("account_id", BigIntPK, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

visits = Table(
    "visits",
    metadata,
    _id(),
    Column("uuid", Uuid, unique=True, nullable=False),
    _account_id(),
    Column("contact_id", BigIntPK, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("shop_id", BigIntPK, ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(255)),
    Column("source", String(255)),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The visit's place in the changes feed, moved by every write of the visit: filled in by the
    # database (migration 0006 says how on each), never by a statement.
    Column("change_xid", BigInteger, FetchedValue(), nullable=False),
    Column("change_seq", BigInteger, FetchedValue(), nullable=False),
    # NULL external_ids never collide, in SQLite and PostgreSQL alike.
    UniqueConstraint("account_id", "external_id", name="uq_visits_account_external_id"),
    # The list order (newest first, id as tie-break) read straight off an index.
    Index("ix_visits_account_created", "account_id", "created_at", "id"),
    Index("ix_visits_contact_created", "contact_id", "created_at", "id"),
    # The list's filters and sorts (GET /visits), each read in order off an index.
    Index("ix_visits_shop_created", "shop_id", "created_at", "id"),
    # A shop and a range of starts_at (a month of one shop): the total counts the matches alone, and
    # on PostgreSQL a page in any sort is cut from the matches alone too (a page sorted by created_at
    # otherwise walks the shop's visits newer than the range, backwards, to find its rows).
    Index("ix_visits_shop_starts", "shop_id", "starts_at", "id", postgresql_include=["created_at", "updated_at"]),
    Index("ix_visits_account_source_created", "account_id", "source", "created_at", "id"),
    Index("ix_visits_account_starts", "account_id", "starts_at", "id"),
    Index("ix_visits_account_updated", "account_id", "updated_at", "id"),
    Index("ix_visits_account_changes", "account_id", "change_xid", "change_seq"),
    # A contact's first and last visit (the contact resource), each one probe of this index; on
    # it carries what a visit rule counts by (rules.repository; SQLite's rowid is the id), so
    # the contact's qualifying visits are counted from the index alone.
    Index("ix_visits_contact_starts", "contact_id", "starts_at", "shop_id", "source", postgresql_include=["id"]),
)

# What is left of a deleted visit, for the changes feed: its place there is a change like any other.
visit_tombstones = Table(
    "visit_tombstones",
    metadata,
    _id(),
    _account_id(),
    Column("uuid", Uuid, nullable=False),
    Column("external_id", String(255)),
    Column("deleted_at", UTCDateTime, nullable=False),
    Column("change_xid", BigInteger, FetchedValue(), nullable=False),
    Column("change_seq", BigInteger, FetchedValue(), nullable=False),
    Index("ix_visit_tombstones_account_changes", "account_id", "change_xid", "change_seq"),
    Index("ix_visit_tombstones_account_deleted", "account_id", "deleted_at"),
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    _id(),
    Column("uuid", Uuid, unique=True, nullable=False),
    _account_id(),
    Column("name", String(255), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("secret", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    # Deliveries in a row that ended "failed"; reset by a success or by setting the status ACTIVE.
    Column("consecutive_failures", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_webhook_subscriptions_account_event", "account_id", "event_type", "status"),
)

# The outbox: written in the transaction of the change it reports.
webhook_events = Table(
    "webhook_events",
    metadata,
    _id(),
    Column("uuid", Uuid, unique=True, nullable=False),
    Column("account_id", BigIntPK, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("type", String(64), nullable=False),
    # The exact body every attempt sends, so retries and both signatures cover the same bytes.
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The X-Request-Id of the request that caused the event, sent on each of its deliveries.
    Column("request_id", String(128)),
)

# One event to one subscription: pending until a 2xx (succeeded) or the schedule runs out (failed).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    Column("uuid", Uuid, unique=True, nullable=False),
    Column("subscription_id", BigIntPK, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", BigIntPK, ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    # A worker that claims a delivery holds it until lease_until; a killed worker's lease lapses.
    Column("lease_until", UTCDateTime),
    Column("lease_token", Uuid),
    Column("last_attempt_at", UTCDateTime),
    Column("last_status_code", Integer),
    Column("last_error", String(1000)),
    Column("last_response_body", Text),
    Column("delivered_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    # The head of each subscription's queue, and the worker's scan for due deliveries.
    Index("ix_webhook_deliveries_subscription_state", "subscription_id", "state", "id"),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
)

# The first answer to a POST or PUT sent with an Idempotency-Key, kept to replay to repeats.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _id(),
    _account_id(),
    Column("key", String(255), nullable=False),
    # SHA-256 of method, path and body: a repeat must be the same request.
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # running | done
    # While running, the request holding lock_token owns the key until locked_until.
    Column("lock_token", Uuid),
    Column("locked_until", UTCDateTime),
    Column("response_status", Integer),
    Column("response_body", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
)

# Visit rules: what turns visits into loyalty moments (rules/). Fields a kind does not use are null;
# `at` is a JSON list of counts.
visit_rules = Table(
    "visit_rules",
    metadata,
    _id(),
    Column("uuid", Uuid, unique=True, nullable=False),
    _account_id(),
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # milestone | frequency | lapse
    Column("every", BigInteger),
    Column("at", Text),
    Column("count", BigInteger),
    Column("within_days", Integer),
    Column("after_days", Integer),
    Column("min_visits", BigInteger),
    Column("shop_id", BigIntPK, ForeignKey("shops.id", ondelete="CASCADE")),
    Column("source", String(255)),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_visit_rules_account_id", "account_id", "id"),
)

# Each time a milestone or frequency rule fired for a contact: `count` is the contact's qualifying
# visit count at the visit that fired it, and the key makes a (rule, contact, count) fire once ever.
visit_rule_firings = Table(
    "visit_rule_firings",
    metadata,
    # No foreign keys: the rule's check share-locks the rule's row, and every create that fires it
    # from every connection piles up locks on those few rows (PostgreSQL's multixacts); the
    # contact's check and an index for its cascade were a third of what a firing writes. A rule's
    # delete and a contact's delete remove their firings themselves (RuleRepository.delete and
    # forget_contact), by the key.
    Column("rule_id", BigIntPK, primary_key=True),
    Column("contact_id", BigIntPK, primary_key=True),
    Column("count", BigInteger, primary_key=True),
    Column("visit_id", BigInteger, nullable=False),
    Column("fired_at", UTCDateTime, nullable=False),
)

# A contact's standing with a lapse rule, from the pass that found it lapsed: the latest qualifying
# visit's start then, and when it lapsed (null again once it returns). No foreign keys: a lapse pass
# writes up to 10,000 rows a statement, and their checks were half its time; a rule's delete and a
# contact's delete remove their rows themselves (rules.service).
visit_rule_contacts = Table(
    "visit_rule_contacts",
    metadata,
    Column("rule_id", BigIntPK, primary_key=True),
    Column("contact_id", BigIntPK, primary_key=True),
    Column("last_visit_at", UTCDateTime),
    Column("lapsed_at", UTCDateTime),
)

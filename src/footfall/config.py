import re
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_RETRY_SCHEDULE: list[float] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


class Settings(BaseSettings):
    """Every setting comes from the environment with the FOOTFALL_ prefix (the README lists them)."""

    model_config = SettingsConfigDict(env_prefix="FOOTFALL_")

    database_url: str = "sqlite:///footfall.db"
    # asyncpg's prepared statements kept per connection; 0 behind PgBouncer in transaction pooling.
    database_statement_cache_size: int = Field(default=100, ge=0)
    # PostgreSQL streaming replicas that GET requests read from (comma-separated URLs), and the lag
    # past which one is left out until it catches up.
    database_replica_urls: Annotated[list[str], NoDecode] = []
    replica_max_lag_seconds: float = Field(default=5.0, gt=0)
    # Connections a process keeps (PostgreSQL's, or SQLite's readers), no overflow: a request waits
    # for a free one rather than opening more.
    database_pool_size: int = 20
    # Seconds a process may keep a token it looked up; a revocation takes effect within this.
    token_cache_seconds: float = 2.0
    # How long `footfall serve` and `footfall worker` wait for PostgreSQL to answer at start.
    database_start_timeout: float = 300.0

    # Idempotency-Key: how long a first answer is kept to replay, and how long a request that is
    # still running owns its key (after that, a repeat may take over a key whose request died).
    idempotency_ttl_seconds: int = 86400
    idempotency_lock_seconds: float = 30.0
    # Requests per minute per token; 0 turns rate limiting off. Shared through Redis when redis_url is set.
    rate_limit: int = 600
    redis_url: str | None = None
    max_body_bytes: int = 1024 * 1024

    # Deliver webhooks from inside `footfall serve` (off with --no-worker or FOOTFALL_WEBHOOK_WORKER=0).
    webhook_worker: bool = True
    # Visits created more than this many days ago are purged daily by the worker; None keeps them all.
    retention_days: int | None = Field(default=None, ge=1)
    # Seconds between the worker's looks for contacts that lapsed (visit rules of kind lapse).
    rules_interval: float = Field(default=60.0, gt=0)
    # Seconds to wait before each attempt: the first entry is the first attempt.
    webhook_retry_schedule: Annotated[list[float], NoDecode] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout: float = 10.0
    webhook_allow_private_urls: bool = False
    # A subscription whose deliveries fail this many times in a row is set INACTIVE.
    webhook_max_consecutive_failures: int = 5
    webhook_poll_interval: float = 0.5
    # Deliveries one worker sends at once (to different subscriptions).
    webhook_concurrency: int = 16

    # Log lines: json, or text (the default when stderr is a terminal; else json); and the least
    # level written (info writes a line a request; warning leaves those out).
    log_format: Literal["json", "text"] | None = None
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # Prometheus metrics: recorded and served at /metrics on the API's port when true. `footfall serve
    # --metrics-port` (FOOTFALL_METRICS_PORT) serves them on a port of their own instead.
    metrics: bool = False
    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return (value.strip().lower() or None) if isinstance(value, str) else value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_replica_urls", mode="before")
    @classmethod
    def _comma_separated_urls(cls, value: object) -> object:
        # Split where a URL begins: one URL may itself name several hosts with commas (libpq's form).
        if isinstance(value, str):
            return [part.strip() for part in re.split(r",(?=\s*[A-Za-z][A-Za-z0-9+]*://)", value) if part.strip()]
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _not_empty(cls, value: list[float]) -> list[float]:
        if not value or any(delay < 0 for delay in value):
            raise ValueError("needs at least one delay, none negative")
        return value

    @property
    def records_metrics(self) -> bool:
        return self.metrics or self.metrics_port is not None

    @property
    def webhook_lease_seconds(self) -> float:
        """How long a claimed delivery stays claimed: a whole attempt, with room to record it."""
        return self.webhook_timeout + 5

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting comes from the environment with the FOOTFALL_ prefix."""

    model_config = SettingsConfigDict(env_prefix="FOOTFALL_")

    database_url: str = "sqlite:///footfall.db"
    # Connections each app process keeps open to PostgreSQL (SQLAlchemy pool size).
    database_pool_size: int = 10

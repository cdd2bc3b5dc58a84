"""Settings from ``TONLE_`` environment variables, validated when the command starts.

Nested sections use ``__``: ``TONLE_INGEST__BATCH_SIZE=20000``. Nothing here is read at
import time; the ``tonle`` command builds :class:`Settings` in its entry point.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, FilePath, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tonle.contract import ID_PATTERN
from tonle.errors import ConfigError

DEFAULT_DATABASE_URL = "postgresql://localhost:5432/tonle"
DEFAULT_MQTT_URL = "mqtt://localhost:1883"


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where an MQTT broker is and how to log in, parsed from ``mqtt://user:pass@host:port``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None  # the CA that signed the broker's certificate; system CAs if None

    def __str__(self) -> str:  # never print the password
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://…``; raise ConfigError if wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"MQTT URL {url!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ConfigError(f"MQTT URL {url!r} has no host")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"MQTT URL {url!r} has a port that is not a number") from None
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


def checked_mqtt_url(value: str) -> str:
    """``value`` if it parses as an MQTT URL; a ValueError (for pydantic) naming why if not."""
    try:
        parse_mqtt_url(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return value


class DbSettings(BaseModel):
    """How the schema is laid out; read by ``tonle db migrate``."""

    mode: Literal["auto", "timescaledb", "native"] = Field(
        default="auto",
        description="auto uses TimescaleDB where the extension is available",
    )
    retention_days: int = Field(default=730, ge=1, description="raw readings kept this long")
    compress_after_days: int = Field(default=7, ge=1, description="TimescaleDB compression")
    rollup_refresh_s: float = Field(default=30.0, gt=0, description="native roll-up refresh")


class IngestSettings(BaseModel):
    """The ingester's knobs (``TONLE_INGEST__…``)."""

    client_id: str = Field(default="tonle-ingest-1", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    group: str = Field(default="tonle", pattern=ID_PATTERN, description="shared subscription")
    protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="3.1.1 for brokers without MQTT 5 (then no shared subscription)"
    )
    batch_size: int = Field(default=10_000, ge=1, description="readings per transaction")
    max_delay_s: float = Field(default=0.5, gt=0, description="longest a reading waits")
    receive_maximum: int = Field(default=65_535, ge=20, le=65_535)
    session_expiry_s: int = Field(default=7 * 86_400, ge=0)
    strict: bool = Field(default=False, description="dead-letter unknown sites and sensors")
    max_future_s: float = Field(default=3_600.0, gt=0, description="reject readings ahead")
    min_year: int = Field(default=2000, description="reject readings from a clock never set")
    backoff_max_s: float = Field(default=30.0, gt=0)


class AnalyticsSettings(BaseModel):
    """Where analytics finds each site's tariff, shifts and pilot terms (``TONLE_ANALYTICS__…``)."""

    sites_file: Path | None = Field(
        default=None, description="sites YAML; the shipped example when unset"
    )


class Settings(BaseSettings):
    """Everything the server-side commands read from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="TONLE_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    database_url: str = Field(default=DEFAULT_DATABASE_URL)
    mqtt_url: str = Field(default=DEFAULT_MQTT_URL)
    mqtt_ca_file: FilePath | None = Field(
        default=None,
        description="PEM CA bundle that signed the broker's certificate (mqtts://); "
        "the system CAs if unset",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    db: DbSettings = Field(default_factory=DbSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)

    @field_validator("mqtt_url")
    @classmethod
    def _parseable(cls, value: str) -> str:
        return checked_mqtt_url(value)

    @model_validator(mode="after")
    def _ca_file_needs_tls(self) -> Settings:
        if self.mqtt_ca_file is not None and not parse_mqtt_url(self.mqtt_url).tls:
            raise ValueError(
                "TONLE_MQTT_CA_FILE is set but TONLE_MQTT_URL starts with mqtt://; use mqtts://"
            )
        return self

    @property
    def broker(self) -> BrokerAddress:
        """The parsed broker address, with the CA file to verify it by."""
        return replace(parse_mqtt_url(self.mqtt_url), ca_file=self.mqtt_ca_file)

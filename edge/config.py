"""The edge agent's configuration file (``edge.yaml``): pydantic models and their loader.

Relative paths in the file (spool, password and TLS files, truth directory) are taken
relative to the file itself, so a configuration directory can be moved as a whole.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tonle.contract import ID_PATTERN, MAX_PAYLOAD_BYTES
from tonle.errors import ConfigError
from tonle.settings import BrokerAddress, checked_mqtt_url, parse_mqtt_url

# The largest the v1 contract allows in one message.
MAX_READINGS_PER_MESSAGE = 10_000
# A QoS 1 publisher has 16-bit message ids; keep room for the status messages.
MAX_INFLIGHT_LIMIT = 60_000


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Make a relative path relative to the configuration file's directory."""
    value = value.expanduser()
    base_dir = (info.context or {}).get("base_dir")
    if not value.is_absolute() and isinstance(base_dir, Path):
        value = base_dir / value
    return value


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    value = _resolve_path(value, info)
    if not value.is_file():
        raise ValueError(f"file {value} does not exist")
    return value


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]


class _Section(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Section):
    """TLS towards the broker; used when ``broker.url`` is ``mqtts://``."""

    ca_file: ExistingFile | None = Field(default=None, description="CA bundle; system CAs if unset")
    cert_file: ExistingFile | None = Field(default=None, description="client certificate")
    key_file: ExistingFile | None = Field(default=None, description="client private key")
    insecure: bool = Field(default=False, description="skip the host name check (testing only)")

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: set both or neither")
        return self


class BrokerConfig(_Section):
    """Where the MQTT broker is and how the edge logs in."""

    url: str = Field(default="mqtt://localhost:1883", description="mqtt:// or mqtts://")
    username: str | None = None
    password: SecretStr | None = None
    password_file: ExistingFile | None = Field(default=None, description="first line is used")
    tls: TlsConfig | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: int = Field(default=30, ge=5, le=65_535)
    client_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="default tonle-edge-<site>-<edge_id>",
    )
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _parseable(cls, value: str) -> str:
        return checked_mqtt_url(value)

    @model_validator(mode="after")
    def _consistent(self) -> BrokerConfig:
        address = parse_mqtt_url(self.url)
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        if self.tls is not None and not address.tls:
            raise ValueError("tls is set but url starts with mqtt://; use mqtts://")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be below reconnect_min_s")
        return self

    def address(self) -> BrokerAddress:
        """The broker address, with the credentials from the fields, the file or the URL."""
        address = parse_mqtt_url(self.url)
        password = address.password
        if self.password is not None:
            password = self.password.get_secret_value()
        elif self.password_file is not None:
            try:
                lines = self.password_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"cannot read broker.password_file: {exc}") from None
            password = lines[0] if lines else ""
        return BrokerAddress(
            host=address.host,
            port=address.port,
            username=self.username if self.username is not None else address.username,
            password=password,
            tls=address.tls,
        )


class BatchConfig(_Section):
    """How readings are packed into messages (one message per machine topic)."""

    max_readings: int = Field(default=50, ge=1, le=MAX_READINGS_PER_MESSAGE)
    max_delay_s: float = Field(default=1.0, gt=0, description="longest a reading waits")
    max_payload_bytes: int = Field(default=MAX_PAYLOAD_BYTES, ge=1024, le=MAX_PAYLOAD_BYTES)


class SpoolConfig(_Section):
    """The on-disk queue of messages not yet acknowledged by the broker."""

    path: ConfigPath = Path("/var/lib/tonle/edge.spool")
    max_mb: float = Field(default=256.0, gt=0, description="oldest messages dropped beyond it")
    synchronous: Literal["full", "normal"] = Field(
        default="full", description="full: a power cut loses nothing committed"
    )


class PublishConfig(_Section):
    """How many messages may await the broker's acknowledgement at once."""

    max_inflight: int = Field(default=1000, ge=1, le=MAX_INFLIGHT_LIMIT)
    high_water_messages: int = Field(
        default=10_000,
        ge=1,
        description="pause sources while this many messages wait in the spool",
    )
    drain_timeout_s: float = Field(default=5.0, ge=0, description="wait for acks on stop")
    keep_unrouted: bool = Field(
        default=True,
        description="keep and resend messages the broker says no subscriber took",
    )
    unrouted_retry_max_s: float = Field(
        default=60.0, gt=0, description="longest wait before resending such messages"
    )


class SimulatorSourceConfig(_Section):
    """Readings from the bundled factory simulator."""

    type: Literal["simulator"]
    layout: str = Field(default="garment", min_length=1)
    seed: int = 1
    realtime: bool = Field(default=True, description="false: backfill history as fast as it goes")
    start: datetime | None = Field(default=None, description="first timestamp, with an offset")
    days: float | None = Field(default=None, gt=0, description="how much history; null: endless")
    truth_dir: ConfigPath | None = None

    @model_validator(mode="after")
    def _aware(self) -> SimulatorSourceConfig:
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("start needs a UTC offset, e.g. 2026-11-28T00:00:00+07:00")
        return self


class SystemSourceConfig(_Section):
    """The gateway's own health: CPU temperature, load, free memory, free spool disk."""

    type: Literal["system"]
    interval_s: float = Field(default=60.0, gt=0)
    line: Id = Field(default="gateway", description="machine is the edge_id")


SourceConfig = Annotated[
    SimulatorSourceConfig | SystemSourceConfig,
    Field(discriminator="type"),
]


class EdgeConfig(_Section):
    """Everything one edge gateway needs to run."""

    site: Id
    edge_id: Id
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    sources: list[SourceConfig] = Field(min_length=1)

    def client_id(self) -> str:
        """The MQTT client id: the configured one, or one derived from site and edge."""
        return self.broker.client_id or f"tonle-edge-{self.site}-{self.edge_id}"


def load_config(path: Path | str) -> EdgeConfig:
    """Read and validate an ``edge.yaml``; raise ConfigError naming the file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; start from edge/edge.example.yaml") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (site, edge_id, sources, …)")
    return parse_config(document, source=str(path), base_dir=path.resolve().parent)


def parse_config(
    document: object, source: str = "<config>", base_dir: Path | None = None
) -> EdgeConfig:
    """Validate an already-parsed configuration; errors name ``source`` and each field."""
    try:
        return EdgeConfig.model_validate(
            document, context={"base_dir": base_dir or Path(os.getcwd())}
        )
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"  {where}: {message}")
        raise ConfigError(f"{source}: invalid edge configuration\n" + "\n".join(problems)) from None

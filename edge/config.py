"""The edge agent's configuration file (``edge.yaml``): pydantic models and their loader.

Relative paths in the file (spool, password and TLS files, truth directory) are taken
relative to the file itself, so a configuration directory can be moved as a whole.
"""

from __future__ import annotations

import os
import re
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

from tonle.contract import ID_PATTERN, MAX_PAYLOAD_BYTES, METRIC_PATTERN
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


class MetricSampling(_Section):
    """When a polled or subscribed value is published (the sampling discipline).

    Without a deadband every reading is published. With one, a reading is published
    when it differs from the last published value of its metric by more than the
    deadband (0: by anything), and at least every ``heartbeat_s`` seconds, so a flat
    value still shows the device alive.
    """

    deadband: float | None = Field(
        default=None, ge=0, description="in the metric's unit; null: publish every reading"
    )
    heartbeat_s: float = Field(
        default=300.0, gt=0, description="with a deadband: publish at least this often"
    )


# Per metric of a device or node list; the key "*" sets the default for the others.
SamplingRules = dict[str, MetricSampling]


def _check_sampling_keys(rules: SamplingRules) -> SamplingRules:
    for key in rules:
        if key != "*" and not re.fullmatch(METRIC_PATTERN, key):
            raise ValueError(f"sampling key {key!r} is neither a metric name nor '*'")
    return rules


def _map_reference(value: str, info: ValidationInfo) -> str:
    """A shipped map's name stays as it is; a file path is made absolute."""
    if value.endswith((".yaml", ".yml")) or "/" in value:
        return str(_existing_file(Path(value), info))
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError(f"map {value!r} is neither a shipped map name nor a .yaml file")
    return value


class ModbusDeviceConfig(_Section):
    """One meter or controller on a Modbus link, read with a register map."""

    unit_id: int = Field(ge=1, le=255, description="Modbus unit (slave) id on the link")
    map: Annotated[str, AfterValidator(_map_reference)] = Field(
        description="a shipped map (sdm630, sdm120, schneider-pm5100) or a map YAML file"
    )
    line: Id
    machine: Id
    interval_s: float | None = Field(default=None, gt=0, description="default: the source's")
    metrics: list[str] | None = Field(default=None, description="only these metrics of the map")
    sampling: Annotated[SamplingRules, AfterValidator(_check_sampling_keys)] = Field(
        default_factory=dict
    )


class ModbusSourceConfig(_Section):
    """Modbus meters on one link: TCP (a meter or a gateway), or RTU over a serial port."""

    type: Literal["modbus"]
    name: str | None = Field(default=None, min_length=1, description="default from the address")
    transport: Literal["tcp", "rtu", "rtu-over-tcp"] = "tcp"
    host: str | None = Field(default=None, description="tcp and rtu-over-tcp")
    port: int = Field(default=502, ge=1, le=65_535)
    serial_port: str | None = Field(default=None, description="rtu, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    timeout_s: float = Field(default=1.0, gt=0, description="per request")
    retries: int = Field(default=2, ge=0, description="further attempts of a failed request")
    interval_s: float = Field(default=10.0, gt=0, description="between polls of each device")
    devices: list[ModbusDeviceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _address(self) -> ModbusSourceConfig:
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("transport rtu needs serial_port (e.g. /dev/ttyUSB0)")
        if self.transport != "rtu" and not self.host:
            raise ValueError(f"transport {self.transport} needs host")
        return self

    def source_name(self) -> str:
        """The configured name, or one made from the address."""
        if self.name:
            return self.name
        if self.transport == "rtu":
            return f"modbus-{self.serial_port}"
        return f"modbus-{self.host}:{self.port}"


class OpcUaNodeConfig(_Section):
    """One OPC UA variable, published as one metric of one machine."""

    node_id: str = Field(
        pattern=r"^(?:(?:ns=\d+|nsu=[^;]+);)?[isgb]=.+$",
        description="e.g. ns=2;s=Line1.Press1.Power",
    )
    line: Id
    machine: Id
    metric: str = Field(pattern=METRIC_PATTERN, max_length=63)
    unit: str | None = None
    scale: float = Field(default=1.0, description="value = raw * scale + offset")
    offset: float = 0.0
    sampling: MetricSampling | None = Field(default=None, description="default: the source's")


class OpcUaSourceConfig(_Section):
    """Variables of one OPC UA server, by subscription."""

    type: Literal["opcua"]
    name: str | None = Field(default=None, min_length=1, description="default from the URL")
    url: str = Field(pattern=r"^opc\.tcp://", description="opc.tcp://host:4840[/path]")
    security_policy: Literal[
        "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"
    ] = "None"
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate_file: ExistingFile | None = Field(default=None, description="client certificate")
    private_key_file: ExistingFile | None = None
    server_certificate_file: ExistingFile | None = Field(
        default=None, description="trust only this server certificate"
    )
    username: str | None = None
    password: SecretStr | None = None
    password_file: ExistingFile | None = Field(default=None, description="first line is used")
    publishing_interval_ms: int = Field(default=1000, ge=10)
    sampling_interval_ms: int | None = Field(
        default=None, ge=0, description="server-side sampling; default the publishing interval"
    )
    timeout_s: float = Field(default=10.0, gt=0)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    sampling: MetricSampling = Field(default_factory=MetricSampling)
    nodes: list[OpcUaNodeConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> OpcUaSourceConfig:
        secured = self.security_policy != "None"
        if secured != (self.security_mode != "None"):
            raise ValueError("security_policy and security_mode are both None or both set")
        if secured and (self.certificate_file is None or self.private_key_file is None):
            raise ValueError("a security policy needs certificate_file and private_key_file")
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("a password needs a username")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be below reconnect_min_s")
        keys = [(n.line, n.machine, n.metric) for n in self.nodes]
        if len(set(keys)) != len(keys):
            raise ValueError("two nodes publish the same line/machine/metric")
        return self

    def source_name(self) -> str:
        """The configured name, or one made from the URL."""
        return self.name or f"opcua-{self.url.removeprefix('opc.tcp://')}"

    def secret(self) -> str | None:
        """The password from the field or the file."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                lines = self.password_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"cannot read password_file: {exc}") from None
            return lines[0] if lines else ""
        return None


SourceConfig = Annotated[
    SimulatorSourceConfig | SystemSourceConfig | ModbusSourceConfig | OpcUaSourceConfig,
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

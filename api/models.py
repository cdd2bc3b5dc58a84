"""What the API returns: the ``…Public`` models its OpenAPI schema documents."""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from tonle.contract import Id, Metric
from tonle.settings import checked_mqtt_url

Bucket = Literal["raw", "1m", "1h", "1d"]
Level = Literal["machine", "line", "site"]
Grain = Literal["15m", "1h", "1d", "shift"]
OeeBy = Literal["machine", "line"]


class CheckPublic(BaseModel):
    """One dependency the API needs, and whether it answered."""

    ok: bool
    detail: str


class ReadinessPublic(BaseModel):
    """Whether the database and the broker are reachable."""

    status: Literal["ready", "not ready"]
    database: CheckPublic
    broker: CheckPublic


class LivenessPublic(BaseModel):
    """The process answers."""

    status: Literal["ok"] = "ok"


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _known_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Phnom_Penh")
    return value


# Free text the registry keeps: no NUL (PostgreSQL text cannot hold it), bounded length.
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
Timezone = Annotated[
    str,
    Field(max_length=64, json_schema_extra=lambda schema: schema.update(enum=sorted(_timezones()))),
    AfterValidator(_known_timezone),
]
Power = Annotated[float, Field(gt=0, le=1e9, description="watts")]
CycleTime = Annotated[float, Field(gt=0, le=1e6, description="seconds per unit")]
Money = Annotated[float, Field(ge=0, le=1e12)]


class _Write(BaseModel):
    # A misspelt field is a 422, not a silently ignored change.
    model_config = ConfigDict(extra="forbid")


class _Update(BaseModel):
    # A misspelt field is a 422; so is a request that changes nothing.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})


class SiteBase(_Write):
    """What the registry knows about a factory in a pilot."""

    name: Text | None = None
    timezone: Timezone = "UTC"
    sector: Text | None = Field(default=None, description="e.g. garments, footwear, food")
    tariff: Text | None = Field(default=None, description="the electricity tariff's name")
    pilot_investment: Money | None = Field(default=None, description="what the pilot cost")
    pilot_start: date | None = None
    pilot_end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SiteBase:
        if self.pilot_start and self.pilot_end and self.pilot_end < self.pilot_start:
            raise ValueError("pilot_end is before pilot_start")
        return self


class SiteCreate(SiteBase):
    """A new site; its id cannot change later."""

    site: Id


class SiteUpdate(_Update):
    """Fields to change on a site; ``active: false`` deactivates it (nothing is deleted)."""

    name: Text | None = None
    timezone: Timezone | SkipJsonSchema[None] = None
    sector: Text | None = None
    tariff: Text | None = None
    pilot_investment: Money | None = None
    pilot_start: date | None = None
    pilot_end: date | None = None
    active: bool | SkipJsonSchema[None] = None


class SitePublic(BaseModel):
    """A factory in a pilot."""

    site: str
    name: str | None
    timezone: str
    sector: str | None = None
    tariff: str | None = None
    pilot_investment: float | None = None
    pilot_start: date | None = None
    pilot_end: date | None = None
    active: bool = True


class LineCreate(_Write):
    """A new production line (or ``utilities``) of a site."""

    line: Id
    name: Text | None = None


class LineUpdate(_Update):
    """Fields to change on a line; ``active: false`` deactivates it."""

    name: Text | None = None
    active: bool | SkipJsonSchema[None] = None


class LineRecordPublic(BaseModel):
    """A line as the registry holds it."""

    site: str
    line: str
    name: str | None
    active: bool


class MachineCreate(_Write):
    """A new machine on a line."""

    machine: Id
    name: Text | None = None
    kind: Text | None = Field(default=None, description="e.g. sewing, compressor, boiler")
    rated_power_w: Power | None = None
    ideal_cycle_s: CycleTime | None = None


class MachineUpdate(_Update):
    """Fields to change on a machine; ``active: false`` deactivates it."""

    name: Text | None = None
    kind: Text | None = None
    rated_power_w: Power | None = None
    ideal_cycle_s: CycleTime | None = None
    active: bool | SkipJsonSchema[None] = None


class MachineRecordPublic(BaseModel):
    """A machine as the registry holds it."""

    site: str
    line: str
    machine: str
    name: str | None
    kind: str | None
    rated_power_w: float | None
    ideal_cycle_s: float | None
    active: bool


class SensorCreate(_Write):
    """A new sensor: one metric of a machine."""

    metric: Metric
    unit: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[^\x00]*$")] | None = None


class SensorUpdate(_Update):
    """Fields to change on a sensor; ``active: false`` deactivates it."""

    unit: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[^\x00]*$")] | None = None
    active: bool | SkipJsonSchema[None] = None


class SensorPublic(BaseModel):
    """A sensor as the registry holds it."""

    site: str
    line: str
    machine: str
    metric: str
    unit: str | None
    active: bool


class EdgeCreate(_Write):
    """A new edge gateway of a site."""

    edge_id: Id
    broker_url: str | None = Field(
        default=None,
        max_length=500,
        description="the broker as the edge reaches it; default the API's own, without user",
    )

    @field_validator("broker_url")
    @classmethod
    def _parseable(cls, value: str | None) -> str | None:
        return None if value is None else checked_mqtt_url(value)


class EdgeCredentialPublic(BaseModel):
    """An edge's MQTT login as stored (never its password)."""

    site: str
    edge_id: str
    username: str
    created_at: datetime
    revoked_at: datetime | None


class EdgeProvisionedPublic(EdgeCredentialPublic):
    """A new edge: its one-time password and a ready ``edge.yaml``; shown only this once."""

    password: str = Field(description="shown only now; only its hash is kept")
    edge_yaml: str = Field(description="the edge's configuration, password included")


class BrokerFilesPublic(BaseModel):
    """Mosquitto's ``password_file`` and ``acl_file``, generated from the registry."""

    passwd: str
    acl: str


class MachinePublic(BaseModel):
    """A machine and the metrics its sensors report."""

    machine: str
    name: str | None
    kind: str | None
    metrics: list[str]


class LinePublic(BaseModel):
    """A production line (or ``utilities``) and its machines."""

    line: str
    name: str | None
    machines: list[MachinePublic]


class SiteDetailPublic(SitePublic):
    """A site with its lines and machines."""

    lines: list[LinePublic]


class TelemetryPointPublic(BaseModel):
    """One reading (raw) or one bucket's figures (1m, 1h, 1d: ``value`` is the mean)."""

    ts: datetime
    line: str
    machine: str
    metric: str
    unit: str | None
    value: float
    min: float | None = None
    max: float | None = None
    n: int | None = Field(default=None, description="readings in the bucket")


class TelemetryPublic(BaseModel):
    """Readings or roll-ups of a site over [start, end)."""

    site: str
    bucket: Bucket
    start: datetime
    end: datetime
    points: list[TelemetryPointPublic]


class SeriesCompletenessPublic(BaseModel):
    """How much of one sensor's data arrived over the range."""

    line: str
    machine: str
    metric: str
    stored: int = Field(description="readings stored in the range")
    interval_s: float | None = Field(
        description="the sensor's typical interval (median gap); null with too few readings"
    )
    expected: int | None = Field(description="readings the interval calls for over the range")
    completeness: float | None = Field(description="stored / expected, at most 1")
    longest_gap_s: float = Field(description="longest stretch of the range without a reading")


class CompletenessPublic(BaseModel):
    """Data completeness per series of a site over [start, end)."""

    site: str
    start: datetime
    end: datetime
    source: Literal["raw", "1h"] = Field(
        description="raw readings, or (long ranges) the hourly roll-up: counts of whole hours "
        "and gaps to the hour"
    )
    series: list[SeriesCompletenessPublic]


class AlertPublic(BaseModel):
    """A maintenance alert episode and who acknowledged it."""

    alert_id: int
    site: str
    line: str
    machine: str
    opened_at: datetime
    closed_at: datetime | None
    severity: Literal["warning", "critical"]
    min_health: float
    peak_at: datetime
    peak_score: float
    reasons: list[dict[str, object]]
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None


class AckCreate(BaseModel):
    """An acknowledgement of an alert."""

    comment: str = Field(default="", max_length=2000, description="what was seen or done")


class HealthReadingPublic(BaseModel):
    """A machine's latest assessed health (ts is the hourly window's end)."""

    ts: datetime
    health: float = Field(description="0..100, 100 healthy")
    score: float
    load: float | None
    samples: int


class RulPublic(BaseModel):
    """A machine's latest estimate of hours to failure, with its 80 % interval."""

    ts: datetime
    rul_h: float
    low_h: float
    high_h: float
    capped: bool = Field(description="at the model's cap: no sign of an approaching failure")


class MachineHealthPublic(BaseModel):
    """The latest health and remaining-life estimate of one machine."""

    line: str
    machine: str
    health: HealthReadingPublic | None
    rul: RulPublic | None


class EnergyIntervalPublic(BaseModel):
    """Energy of a machine, line or site over one bucket, with its idle share where known."""

    line: str = Field(description="'' at site level")
    machine: str = Field(description="'' above machine level")
    bucket_start: datetime
    bucket_end: datetime
    label: str = Field(description="the shift's name for grain=shift, else ''")
    energy_kwh: float
    completeness: float = Field(description="share of expected samples present, 0..1")
    method: str = Field(description="meter, integrated or sum")
    gap_s: float
    idle_kwh: float | None = Field(description="energy drawn while idle (shift and 1d grains)")
    idle_cost: float | None
    currency: str | None


class EnergyPublic(BaseModel):
    """Energy intervals of a site over [start, end) at one level and grain."""

    site: str
    level: Level
    grain: Grain
    start: datetime
    end: datetime
    intervals: list[EnergyIntervalPublic]


class PeakPublic(BaseModel):
    """A month's highest demand window and the machines that made it."""

    month: date
    window_min: int
    peak_start: datetime
    peak_kw: float
    average_kw: float
    load_factor: float
    demand_charge: float
    currency: str
    contributors: list[dict[str, object]] = Field(description="line, machine, kw; largest first")


class OutagePublic(BaseModel):
    """A supply outage or voltage sag."""

    kind: Literal["outage", "sag"]
    start_ts: datetime
    end_ts: datetime
    duration_s: float
    min_voltage: float
    on_generator_s: float
    units_lost: float | None


class CostPublic(BaseModel):
    """Energy, cost and CO₂ of one local day from one source."""

    day: date
    source: Literal["grid", "generator", "solar"]
    energy_kwh: float
    cost: float
    currency: str
    co2_kg: float


class SavingsPublic(BaseModel):
    """A pilot's measured savings (IPMVP Option C): baseline, actual, avoided, payback."""

    granularity: str
    baseline_start: datetime
    baseline_end: datetime
    reporting_start: datetime
    reporting_end: datetime
    r2: float
    cv_rmse_pct: float
    nmbe_pct: float
    meets_guideline14: bool
    adjusted_baseline_kwh: float | None = Field(description="what the baseline predicts")
    reporting_kwh: float | None = Field(description="what was measured")
    avoided_kwh: float | None
    savings_pct: float | None
    fsu_pct: float | None = Field(description="fractional savings uncertainty, 68 %")
    avoided_cost: float | None
    annual_avoided_cost: float | None
    currency: str
    investment: float
    payback_years: float | None


class OeePublic(BaseModel):
    """OEE of a machine (or a line, summed over its machines) in one shift, with six losses."""

    line: str
    machine: str | None = Field(description="None for by=line")
    machines: int
    bucket_start: datetime
    bucket_end: datetime
    label: str
    planned_s: float
    operating_s: float
    total_units: float
    good_units: float
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    breakdown_s: float
    setup_s: float
    minor_stop_s: float
    reduced_speed_s: float
    startup_reject_units: float
    defect_units: float


class EdgePublic(BaseModel):
    """An edge gateway: its last status, when it was last heard, what went missing."""

    edge_id: str
    online: bool
    status: str | None
    status_at: datetime | None
    last_seen: datetime | None = Field(description="latest status or message")
    messages: int
    buffered_messages: int = Field(description="messages delivered late, from the spool")
    gaps: int = Field(description="runs of sequence numbers that never arrived")
    missing_messages: int
    spool_backlog: int | None = Field(description="messages waiting, if the status reported it")


class PortfolioSitePublic(BaseModel):
    """One pilot site's figures over its period, beside the others."""

    site: str
    name: str | None
    period_start: datetime
    period_end: datetime
    period: Literal["pilot", "last 30 days"]
    energy_kwh: float = Field(description="site-level hourly energy in the period")
    completeness: float | None = Field(description="mean of machine-hour completeness")
    savings_pct: float | None
    avoided_cost: float | None
    currency: str | None
    uptime: float | None = Field(description="(idle + running) / (idle + running + fault) time")
    faults: int = Field(description="fault-state intervals that began in the period")
    faults_caught: int = Field(description="of them, with an alert opened in the 14 days before")
    open_alerts: int

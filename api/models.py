"""What the API returns: the ``…Public`` models its OpenAPI schema documents."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Bucket = Literal["raw", "1m", "1h"]
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


class SitePublic(BaseModel):
    """A factory in a pilot."""

    site: str
    name: str | None
    timezone: str


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
    """One reading (raw) or one bucket's figures (1m, 1h: ``value`` is the mean)."""

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

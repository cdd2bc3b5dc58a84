"""What the API returns: the ``…Public`` models its OpenAPI schema documents."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Bucket = Literal["raw", "1m", "1h"]


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

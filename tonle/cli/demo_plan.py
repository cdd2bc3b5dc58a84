"""The demo's two pilots: when their history starts, when their measure begins, what it cost.

The plan is made on the first run and kept in the work directory (``demo.json``), so a
second run continues the same story: the same intervention dates, the same baseline.
A pilot's baseline is whole local days before its intervention; the measurement and
verification needs 28 of them (``analytics.mv_job.MIN_BASELINE_HOURS``), so a backfill of
30 days or more puts the intervention two days before today (more for longer runs).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import yaml

MIN_BASELINE_DAYS = 28
BASELINE_SHARE = 0.6  # of a long backfill: the rest is the reporting period


@dataclass(frozen=True)
class Pilot:
    """A demo pilot: layout, site, its measure, and the figures the registry shows."""

    layout: str
    site: str
    sector: str
    tariff: str
    investment: float
    measure: str
    machines: tuple[str, ...]
    idle_power_factor: float
    running_power_factor: float


PILOTS = (
    Pilot(
        layout="garment",
        site="garment-pp",
        sector="garment",
        tariff="flat 0.164 USD/kWh",
        investment=12_000.0,
        measure="servo motors on the clutch sewing line, VSD on both compressors",
        machines=("sew-a01", "sew-a02", "sew-a03", "comp-01", "comp-02"),
        idle_power_factor=0.3,
        running_power_factor=0.9,
    ),
    Pilot(
        layout="food",
        site="food-pp",
        sector="food processing",
        tariff="time of use 0.131–0.164 USD/kWh, 4 USD/kW-month demand",
        investment=9_000.0,
        measure="VSD on the compressor, idle shut-off on the packaging line",
        machines=("comp-01", "fill-01", "seal-01", "case-01"),
        idle_power_factor=0.4,
        running_power_factor=0.92,
    ),
)
TIMEZONE = "Asia/Phnom_Penh"  # both simulated factories are in Phnom Penh


@dataclass(frozen=True)
class Plan:
    """When the history starts and the measures begin (the same for both pilots)."""

    start: datetime
    intervention: datetime
    baseline_start: date
    baseline_end: date  # the last baseline day, included
    days: float

    def intervention_of(self, pilot: Pilot) -> dict[str, Any]:
        """The simulator's ``Intervention`` for ``pilot``, as plain values."""
        return {
            "start": self.intervention.isoformat(),
            "machines": list(pilot.machines),
            "idle_power_factor": pilot.idle_power_factor,
            "running_power_factor": pilot.running_power_factor,
        }


def make_plan(days: float, now: datetime) -> Plan:
    """The plan for a first run backfilling ``days`` before ``now``.

    A backfill of a day or more starts at local midnight, so every day is whole; the
    intervention starts at local midnight after the baseline days.
    """
    zone = ZoneInfo(TIMEZONE)
    local_now = now.astimezone(zone)
    if days < 2:
        start = now - timedelta(days=days)
        intervention = start + timedelta(days=days * BASELINE_SHARE)
        first = start.astimezone(zone).date()
        return Plan(start, intervention, first, first, days)
    first = local_now.date() - timedelta(days=int(days))
    start = datetime.combine(first, time(), tzinfo=zone).astimezone(UTC)
    baseline_days = int(days * BASELINE_SHARE)
    if days >= MIN_BASELINE_DAYS + 2:
        baseline_days = max(MIN_BASELINE_DAYS, baseline_days)
    switch = first + timedelta(days=baseline_days)
    intervention = datetime.combine(switch, time(), tzinfo=zone).astimezone(UTC)
    return Plan(start, intervention, first, switch - timedelta(days=1), days)


def load_or_make_plan(path: Path, days: float, now: datetime) -> tuple[Plan, bool]:
    """The plan kept at ``path``, or a new one written there; True if it was kept."""
    if path.exists():
        data = json.loads(path.read_text("utf-8"))
        return (
            Plan(
                start=datetime.fromisoformat(data["start"]),
                intervention=datetime.fromisoformat(data["intervention"]),
                baseline_start=date.fromisoformat(data["baseline_start"]),
                baseline_end=date.fromisoformat(data["baseline_end"]),
                days=float(data["days"]),
            ),
            True,
        )
    plan = make_plan(days, now)
    fields = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in asdict(plan).items()}
    path.write_text(json.dumps(fields, indent=2) + "\n", "utf-8")
    return plan, False


def write_sites_file(path: Path, plan: Plan, example: Path) -> Path:
    """The analytics sites file of the two pilots: the example's terms, the plan's baseline."""
    document = yaml.safe_load(example.read_text("utf-8"))
    sites: dict[str, Any] = {}
    for pilot in PILOTS:
        entry = dict(document["sites"][pilot.site])
        entry["pilot"] = {"investment": pilot.investment}
        if (plan.baseline_end - plan.baseline_start).days + 1 >= MIN_BASELINE_DAYS:
            # Shorter baselines are left out: the M&V needs four weeks to fit on.
            entry["pilot"] |= {
                "baseline_start": plan.baseline_start,
                "baseline_end": plan.baseline_end,
            }
        sites[pilot.site] = entry
    path.write_text(
        "# Written by `tonle demo`: the example's tariffs and shifts, the demo's pilot dates.\n"
        + yaml.safe_dump({"sites": sites}, sort_keys=False),
        "utf-8",
    )
    return path


_REGISTER = """
INSERT INTO sites (site, name, sector, tariff, pilot_investment, pilot_start)
VALUES (%(site)s, %(name)s, %(sector)s, %(tariff)s, %(investment)s, %(start)s)
ON CONFLICT (site) DO UPDATE SET
    name = EXCLUDED.name, sector = EXCLUDED.sector, tariff = EXCLUDED.tariff,
    pilot_investment = EXCLUDED.pilot_investment, pilot_start = EXCLUDED.pilot_start
"""


def register_pilots(database_url: str, plan: Plan, names: dict[str, str]) -> None:
    """Put both pilots in the site registry with their investment and start date."""
    start = plan.intervention.astimezone(ZoneInfo(TIMEZONE)).date()
    with psycopg.connect(database_url) as conn:
        for pilot in PILOTS:
            conn.execute(
                _REGISTER,
                {
                    "site": pilot.site,
                    "name": names.get(pilot.site, pilot.site),
                    "sector": pilot.sector,
                    "tariff": pilot.tariff,
                    "investment": pilot.investment,
                    "start": start,
                },
            )


_LAST = """
SELECT max(last.ts) FROM sites si
JOIN lines l ON l.site_id = si.id JOIN machines m ON m.line_id = l.id
JOIN sensors s ON s.machine_id = m.id
CROSS JOIN LATERAL (SELECT max(r.ts) AS ts FROM readings r WHERE r.sensor_id = s.id) AS last
WHERE si.site = %s
"""


def last_reading(database_url: str, site: str) -> datetime | None:
    """When the latest stored reading of ``site`` was taken, or None."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(_LAST, (site,)).fetchone()
    return row[0] if row and isinstance(row[0], datetime) else None

"""Per-site analytics configuration: tariff, emission factors, shifts, the pilot's M&V terms.

One YAML file holds every site (``sites:`` keyed by site id); ``analytics/sites.example.yaml``
ships with the simulator's sites and is meant to be copied and edited. Point
``TONLE_ANALYTICS__SITES_FILE`` (or ``tonle analytics run --sites FILE``) at your copy.
"""

from __future__ import annotations

from datetime import date, time
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tonle.contract import ID_PATTERN
from tonle.errors import ConfigError

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeOfUseBlock(_Section):
    """An energy rate that applies on some days between two local times."""

    name: str
    days: list[Day] = Field(default_factory=lambda: list(DAYS))
    start: time = Field(description="local time the rate starts, inclusive")
    end: time = Field(description="local time it ends, exclusive; 00:00 means midnight")
    rate_per_kwh: float = Field(ge=0)


class Tariff(_Section):
    """What grid electricity costs: a flat rate or time-of-use blocks, plus a demand charge."""

    currency: str = "USD"
    kind: Literal["flat", "time_of_use"] = "flat"
    flat_rate_per_kwh: float = Field(default=0.0, ge=0)
    blocks: list[TimeOfUseBlock] = Field(default_factory=list)
    demand_charge_per_kw_month: float = Field(default=0.0, ge=0, description="on the monthly peak")
    demand_window_min: int = Field(default=15, ge=1, le=60)

    @model_validator(mode="after")
    def _blocks_for_time_of_use(self) -> Tariff:
        if self.kind == "time_of_use" and not self.blocks:
            raise ValueError("a time_of_use tariff needs blocks")
        return self

    def rate_at(self, day: int, local: time) -> float:
        """The energy rate for a local weekday (0 = Monday) and time of day."""
        if self.kind == "flat":
            return self.flat_rate_per_kwh
        name = DAYS[day]
        for block in self.blocks:
            if name not in block.days:
                continue
            end = block.end if block.end != time(0) else time.max
            if block.start <= local < end:
                return block.rate_per_kwh
        return self.flat_rate_per_kwh


class Generator(_Section):
    """The diesel generator: fuel per kWh and its price give the cost of a generated kWh."""

    litres_per_kwh: float = Field(default=0.28, gt=0, description="0.24 at full load … 0.35 at 25%")
    diesel_price_per_litre: float = Field(default=1.0, ge=0)
    co2_kg_per_litre: float = Field(default=2.68, ge=0)

    @property
    def cost_per_kwh(self) -> float:
        """Fuel cost of one generated kWh."""
        return self.litres_per_kwh * self.diesel_price_per_litre


class Break(_Section):
    """A planned stop inside a shift (lunch), in local time."""

    start: time
    end: time


class Shift(_Section):
    """A named working period, in local time; an end before the start crosses midnight."""

    name: str
    days: list[Day] = Field(default_factory=lambda: list(DAYS[:6]))
    start: time
    end: time
    breaks: list[Break] = Field(default_factory=list, description="planned stops (OEE)")


class Meters(_Section):
    """Which machines measure what for the whole site."""

    main: str | None = Field(default=None, description="line/machine of the incoming meter")
    solar: str | None = Field(default=None, description="line/machine of a PV meter, if any")
    ambient: str | None = Field(default=None, description="line/machine with ambient_temp")
    rollover_kwh: float | None = Field(
        default=None, gt=0, description="where energy registers wrap to zero, e.g. 999999.9"
    )


class Pilot(_Section):
    """The pilot's measurement and verification terms (IPMVP Option C)."""

    investment: float = Field(default=0.0, ge=0, description="what the intervention cost")
    baseline_start: date | None = None
    baseline_end: date | None = None
    reporting_start: date | None = None


class SiteConfig(_Section):
    """Everything analytics needs to know about one site that the data does not say."""

    name: str | None = None
    timezone: str = "UTC"
    nominal_voltage_v: float = Field(default=230.0, gt=0)
    grid_co2_kg_per_kwh: float = Field(default=0.40, ge=0)
    tariff: Tariff = Field(default_factory=Tariff)
    generator: Generator = Field(default_factory=Generator)
    shifts: list[Shift] = Field(default_factory=list)
    meters: Meters = Field(default_factory=Meters)
    pilot: Pilot = Field(default_factory=Pilot)
    ideal_cycle_s: dict[str, float] = Field(
        default_factory=dict, description="line/machine -> ideal seconds per unit (OEE)"
    )


SiteId = Annotated[str, Field(pattern=ID_PATTERN)]


class SitesFile(_Section):
    """The whole file: one entry per site id."""

    sites: dict[SiteId, SiteConfig]


def example_sites_path() -> Path:
    """The example file shipped with Tonle (the simulator's sites)."""
    return Path(str(resources.files("analytics").joinpath("sites.example.yaml")))


def load_sites(path: Path | None = None) -> dict[str, SiteConfig]:
    """Read and validate a sites file; the shipped example when ``path`` is None."""
    source = path or example_sites_path()
    try:
        document = yaml.safe_load(source.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the sites file {source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from None
    try:
        return dict(SitesFile.model_validate(document).sites)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ConfigError(f"{source}: {problems}") from None


def site_config(sites: dict[str, SiteConfig], site: str) -> SiteConfig:
    """The configuration of ``site``; defaults (flat tariff at 0) if the file lacks it."""
    return sites.get(site, SiteConfig())

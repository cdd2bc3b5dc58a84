"""Cost, carbon and specific energy on closed-form examples."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import numpy as np
import pytest

from analytics.costs import daily_costs, hourly_rates, on_fraction
from analytics.sec import fit_marginal, ratios
from analytics.series import MS_PER_HOUR, Series, to_ms
from analytics.site_config import SiteConfig, Tariff, TimeOfUseBlock, load_sites
from tonle.errors import ConfigError

T0 = to_ms(datetime(2026, 11, 23, 0, tzinfo=UTC))  # a Monday, 07:00 in Phnom Penh


def test_generator_on_fraction_of_each_hour() -> None:
    hours = np.array([T0, T0 + MS_PER_HOUR, T0 + 2 * MS_PER_HOUR], dtype=np.int64)
    # Off, on at 00:30 for 45 minutes (until 01:15), off again.
    flag = Series.of([T0, T0 + MS_PER_HOUR // 2, T0 + 5 * MS_PER_HOUR // 4], [0, 1, 0])
    assert on_fraction(flag, hours).tolist() == [0.5, 0.25, 0.0]
    assert on_fraction(Series.empty(), hours).tolist() == [0.0, 0.0, 0.0]


def test_flat_tariff_generator_and_carbon_per_day() -> None:
    config = SiteConfig(
        timezone="UTC",
        grid_co2_kg_per_kwh=0.4,
        tariff=Tariff(flat_rate_per_kwh=0.15),
        generator={"litres_per_kwh": 0.3, "diesel_price_per_litre": 1.0, "co2_kg_per_litre": 2.5},
    )
    hours = np.array([T0, T0 + MS_PER_HOUR], dtype=np.int64)
    costs = daily_costs(config, hours, np.array([100.0, 100.0]), np.array([0.0, 0.5]))
    by_source = {c.source: c for c in costs}
    assert by_source["grid"].energy_kwh == 150.0
    assert by_source["grid"].cost == pytest.approx(22.5)
    assert by_source["grid"].co2_kg == pytest.approx(60.0)
    assert by_source["generator"].energy_kwh == 50.0
    assert by_source["generator"].cost == pytest.approx(15.0)  # 15 L at 1 USD
    assert by_source["generator"].co2_kg == pytest.approx(37.5)
    assert {c.day for c in costs} == {date(2026, 11, 23)}


def test_time_of_use_rates_follow_local_time() -> None:
    tariff = Tariff(
        kind="time_of_use",
        flat_rate_per_kwh=0.2,
        blocks=[
            TimeOfUseBlock(
                name="day", days=["mon"], start=time(7), end=time(21), rate_per_kwh=0.15
            ),
            TimeOfUseBlock(name="night", start=time(21), end=time(0), rate_per_kwh=0.1),
        ],
    )
    config = SiteConfig(timezone="Asia/Phnom_Penh", tariff=tariff)
    # 00:00 UTC = 07:00 local Monday; 14:00 UTC = 21:00 local; 18:00 UTC = 01:00 Tuesday.
    hours = np.array([T0, T0 + 14 * MS_PER_HOUR, T0 + 18 * MS_PER_HOUR], dtype=np.int64)
    assert hourly_rates(config, hours).tolist() == [0.15, 0.1, 0.2]
    with pytest.raises(ValueError, match="needs blocks"):
        Tariff(kind="time_of_use")


def test_specific_energy_ratio_and_marginal() -> None:
    units = np.array([100.0, 200.0, 300.0, 0.0])
    energy = 50.0 + 0.5 * units  # 50 kWh a day fixed, 0.5 kWh per unit
    assert ratios(energy, units) == [1.0, 0.75, 50.0 / 300 + 0.5, None]
    fit = fit_marginal(energy, units)
    assert fit.marginal_kwh_per_unit == pytest.approx(0.5)
    assert fit.fixed_kwh_per_day == pytest.approx(50.0)
    assert fit.days == 3
    assert fit_marginal(energy[:2], units[:2]).marginal_kwh_per_unit is None


def test_example_sites_file_loads_and_errors_name_the_field(tmp_path: object) -> None:
    sites = load_sites()
    assert {"garment-pp", "food-pp", "tiny"} <= set(sites)
    assert sites["garment-pp"].tariff.flat_rate_per_kwh == 0.164
    bad = tmp_path / "sites.yaml"  # type: ignore[operator]
    bad.write_text("sites:\n  x1:\n    tariff: {kind: flat, flat_rate_per_kwh: -1}\n")
    with pytest.raises(ConfigError, match=r"sites.x1.tariff.flat_rate_per_kwh"):
        load_sites(bad)


def test_solar_is_counted_at_no_cost() -> None:
    config = SiteConfig(timezone="UTC", tariff=Tariff(flat_rate_per_kwh=0.1))
    hours = np.array([T0], dtype=np.int64)
    costs = daily_costs(config, hours, np.array([10.0]), np.array([0.0]), np.array([4.0]))
    solar = next(c for c in costs if c.source == "solar")
    assert (solar.energy_kwh, solar.cost, solar.co2_kg) == (4.0, 0.0, 0.0)

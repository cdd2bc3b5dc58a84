"""The overview page at ``/``: its HTTP contract, then the page itself in headless Chromium.

The browser tests serve the app with uvicorn on a free port, against a database filled
by the simulator and analysed as in production: ``riverside``, a month with a pilot
(an intervention after four weeks of baseline, so savings are measured) and an open
maintenance alert, and ``hillside``, the two days up to now, so its "today" has data.
The page is driven by Playwright on Debian's Chromium (``apt-get install chromium``, or
``TONLE_CHROMIUM=/path/to/chrome``; ``.ci/run`` installs it); without it the browser
tests fail, saying what to install. Every figure the page shows is read from the DOM and
compared with what the API returns.

Set ``TONLE_SCREENSHOT=docs/overview.png`` to also write the staff view's screenshot there.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import psycopg
import pytest
import uvicorn
import yaml
from fastapi.testclient import TestClient

from analytics.runner import run_once
from analytics.site_config import load_sites
from api.app import create_app
from api.routes.overview import CONTENT_SECURITY_POLICY, STATIC_DIR
from api.tokens import create_token
from simulators.hourly import with_sample_interval
from simulators.layout import Intervention, Layout, MachineBase, load_layout
from tests.analytics.conftest import fill_site
from tonle.settings import Settings

pytestmark = pytest.mark.db

CHROMIUM = Path(os.environ.get("TONLE_CHROMIUM", "/usr/bin/chromium"))  # Debian's build
ZONE = "Asia/Phnom_Penh"
PILOT_START = datetime(2026, 10, 1, tzinfo=ZoneInfo(ZONE))  # a local midnight
BASELINE_DAYS, PILOT_DAYS = 28, 30  # M&V needs four weeks of baseline, then a reporting day
SITES = {  # site: name, sector, layout
    "riverside": ("Riverside Garments", "garments", "tiny"),
    "hillside": ("Hillside Garments", "garments", "garment"),
}
UNNAMED = {  # names for the layouts' machines that have none
    "meter-01": "Main meter",
    "meter-main": "Main meter",
    "comp-01": "Air compressor",
    "ambient-01": "Air temperature",
}
LOAD_TIMEOUT_MS = 15_000


# ---------------------------------------------------------------------- HTTP level


@pytest.fixture(scope="module")
def http(database_url: str, broker_port: int) -> Iterator[TestClient]:
    """The app in-process, for the tests that need no browser."""
    settings = Settings(database_url=database_url, mqtt_url=f"mqtt://127.0.0.1:{broker_port}")
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_page_needs_no_token_and_carries_a_strict_policy(http: TestClient) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert response.headers["x-content-type-options"] == "nosniff"
    # No inline script or style: the policy would block it.
    assert re.search(r"<script(?![^>]*\bsrc=)", response.text) is None
    assert "<style" not in response.text and " style=" not in response.text
    assert "/static/overview.js" in response.text and "/static/overview.css" in response.text


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("overview.js", "text/javascript; charset=utf-8"),
        ("overview.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_static_files_are_served_with_their_types(
    http: TestClient, name: str, content_type: str
) -> None:
    response = http.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.content == (STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize("name", ["index.html", "..%2Fapp.py", "nothing.js", "%2e%2e"])
def test_only_the_listed_static_files_are_served(http: TestClient, name: str) -> None:
    response = http.get(f"/static/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_script_never_writes_markup(http: TestClient) -> None:
    script = http.get("/static/overview.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_the_page_is_not_part_of_the_api_schema(http: TestClient) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not [path for path in paths if path.startswith("/static")]


# ---------------------------------------------------------------------- the data


def _machine_name(machine: MachineBase) -> str:
    if machine.name:
        return machine.name
    if machine.id.startswith("sew-"):
        return f"Sewing machine {machine.id.removeprefix('sew-').upper()}"
    return UNNAMED.get(machine.id, machine.id)


def _sampled(machine: MachineBase, failing: bool) -> MachineBase:
    update: dict[str, Any] = {"condition_interval_s": 300.0}
    if failing and machine.condition is not None:
        # The compressor's bearing starts to fail in the fourth week (12 days of warning,
        # due after the month): the month ends with its alert open.
        update["condition"] = machine.condition.model_copy(
            update={"mean_life_days": 45.0, "life_spread": 0.0, "initial_age": (0.25, 0.25),
                    "pf_days": (12.0, 12.0), "modes": ["bearing"]}
        )  # fmt: skip
    return machine.model_copy(update=update)


def _layout(site: str, intervention_start: datetime | None) -> Layout:
    """A bundled layout under another site id, sampled every 10 min (condition: 5 min).

    With an intervention (the pilot), idle draw halves and the base load drops a fifth
    from its start, and a compressor wears out during the month.
    """
    layout = with_sample_interval(load_layout(SITES[site][2]), 600.0)
    failing = intervention_start is not None
    lines = [
        line.model_copy(update={"machines": [_sampled(m, failing) for m in line.machines]})
        for line in layout.lines
    ]
    plan = None
    if intervention_start is not None:
        plan = Intervention(start=intervention_start, idle_power_factor=0.5, base_load_factor=0.8)
    return layout.model_copy(
        update={"site": site, "timezone": ZONE, "lines": lines, "intervention": plan}
    )


def _sites_file(path: Path) -> Path:
    """The analytics settings: the shipped example's, riverside's with a pilot."""
    example = load_sites()
    riverside = example["tiny"].model_dump(mode="json")
    riverside["pilot"] = {
        "investment": 900.0,
        "baseline_start": PILOT_START.date().isoformat(),
        "baseline_end": (PILOT_START.date() + timedelta(days=BASELINE_DAYS - 1)).isoformat(),
    }
    hillside = example["garment-pp"].model_dump(mode="json")
    hillside["pilot"] = {}
    document = {"sites": {"riverside": riverside, "hillside": hillside}}
    path.write_text(yaml.safe_dump(document), "utf-8")
    return path


@dataclass(frozen=True)
class Analysed:
    """A staff token, a factory token of hillside, and the machines' names by site."""

    staff: str
    factory: str
    names: dict[tuple[str, str], str]


@dataclass(frozen=True)
class Served:
    """The running app's base URL, and what was analysed."""

    url: str
    staff: str
    factory: str
    names: dict[tuple[str, str], str]


@pytest.fixture(scope="module")
def analysed(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Analysed:
    """Both sites simulated, named in the registry and analysed."""
    folder = tmp_path_factory.mktemp("overview")
    with psycopg.connect(database_url, autocommit=True) as conn:
        for site, (name, sector, _) in SITES.items():
            conn.execute(
                "INSERT INTO sites (site, name, timezone, sector) VALUES (%s, %s, %s, %s)",
                (site, name, ZONE, sector),
            )
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    runs = {  # site: intervention, start, days
        "riverside": (PILOT_START + timedelta(days=BASELINE_DAYS), PILOT_START, PILOT_DAYS),
        "hillside": (None, now - timedelta(days=2), 2),
    }
    names: dict[tuple[str, str], str] = {}
    for seed, (site, (intervention, start, days)) in enumerate(runs.items(), start=11):
        layout = _layout(site, intervention)
        path = folder / f"{site}.yaml"
        path.write_text(yaml.safe_dump(layout.model_dump(mode="json")), "utf-8")
        fill_site(database_url, str(path), seed=seed, start=start, days=days)
        names.update({(site, m.id): _machine_name(m) for _, m in layout.machines()})
    with psycopg.connect(database_url, autocommit=True) as conn:
        for (site, machine), name in names.items():
            conn.execute(
                "UPDATE machines AS m SET name = %s FROM lines AS l, sites AS s "
                "WHERE l.id = m.line_id AND s.id = l.site_id AND s.site = %s AND m.machine = %s",
                (name, site, machine),
            )
    reports = run_once(database_url, None, None, None, _sites_file(folder / "sites.yaml"))
    assert sorted(r.site for r in reports) == ["hillside", "riverside"]
    return Analysed(
        staff=create_token(database_url, "staff", None, "sam")[1],
        factory=create_token(database_url, "factory", "hillside", "fay")[1],
        names=names,
    )


@pytest.fixture
def served(database_url: str, broker_port: int, analysed: Analysed) -> Iterator[Served]:
    """The app served by uvicorn on a free port, in a thread, for one test.

    One per test: its event loop's worker threads end with it, as the thread check asks.
    """
    settings = Settings(database_url=database_url, mqtt_url=f"mqtt://127.0.0.1:{broker_port}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="overview-uvicorn"
    )
    thread.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=15)
        while not server.started:
            assert thread.is_alive() and datetime.now(UTC) < deadline, "uvicorn did not start"
            threading.Event().wait(0.05)
        yield Served(f"http://127.0.0.1:{port}", analysed.staff, analysed.factory, analysed.names)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


def _get(served: Served, token: str, path: str, **params: str) -> Any:
    response = httpx2.get(
        served.url + path, params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright; a failure if missing, never a skip."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"no {CHROMIUM}: apt-get install -y chromium (or set TONLE_CHROMIUM)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "no Playwright for Python: pip install -e '.[dev]'"
    if missing is not None:
        pytest.fail(missing)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Opened:
    """A page and what its console reported."""

    page: Any
    errors: list[str]


@pytest.fixture
def opened(browser: Any) -> Iterator[Opened]:
    """A fresh 1280×800 page (own session storage) that records console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield Opened(page, errors)
    context.close()


def _load(opened: Opened, served: Served, token: str) -> Any:
    page = opened.page
    page.goto(f"{served.url}/#token={token}")
    page.wait_for_selector("body[data-loaded='true']", timeout=LOAD_TIMEOUT_MS)
    return page


def _number(text: str) -> float:
    found = re.search(r"-?[\d,]+(?:\.\d+)?", text)
    assert found is not None, text
    return float(found[0].replace(",", ""))


def _shows(label: str | None, title: str | None, name: str) -> bool:
    """A bar shows ``name`` whole, or shortened to fit with the whole name in its title."""
    assert label and title, (label, title)
    if label == name:
        return True
    return label.endswith("…") and name.startswith(label[:-1]) and title.startswith(name)


def _shown_day(served: Served, token: str, site: str) -> dict[str, Any]:
    """The API's answer for the day the page should show: today, else the last with data."""
    start = (datetime.now(UTC) - timedelta(days=366)).isoformat()
    days = _get(served, token, f"/sites/{site}/energy", level="site", grain="1d", start=start)
    last = days["intervals"][-1]
    machines = _get(
        served, token, f"/sites/{site}/energy", level="machine", grain="1d",
        start=last["bucket_start"], end=last["bucket_end"],
    )["intervals"]  # fmt: skip
    local = datetime.fromisoformat(last["bucket_start"]).astimezone(ZoneInfo(ZONE)).date()
    return {"day": local, "machines": machines}


def test_the_page_shows_every_machine_with_the_api_figures(
    opened: Opened, served: Served, tmp_path: Path
) -> None:
    page = _load(opened, served, served.staff)
    assert page.url == f"{served.url}/", "the token stayed in the address bar"
    assert page.evaluate("sessionStorage.getItem('tonle.token')") == served.staff
    shown_sites = page.eval_on_selector_all(
        "section.site", "nodes => nodes.map(n => n.dataset.site)"
    )
    assert shown_sites == ["hillside", "riverside"]
    today = datetime.now(ZoneInfo(ZONE)).date()
    for site in shown_sites:
        expected = _shown_day(served, served.staff, site)
        card = page.locator(f"section.site[data-site='{site}']")
        day = card.locator("p.day")
        assert day.get_attribute("data-day") == expected["day"].isoformat()
        assert day.get_attribute("data-today") == str(expected["day"] == today).lower()
        bars = card.locator("svg.energy-chart g.bar")
        rows = {
            bars.nth(i).get_attribute("data-key"): (
                bars.nth(i).locator("text.label").text_content(),
                bars.nth(i).locator("text.value").text_content(),
                bars.nth(i).locator("title").text_content(),
            )
            for i in range(bars.count())
        }
        assert sorted(rows) == sorted(f"{m['line']}/{m['machine']}" for m in expected["machines"])
        for machine in expected["machines"]:
            label, value, title = rows[f"{machine['line']}/{machine['machine']}"]
            assert _shows(label, title, served.names[(site, machine["machine"])])
            kwh_text, _, idle_text = str(value).partition(", idle ")
            assert _number(kwh_text) == pytest.approx(machine["energy_kwh"], abs=0.05 + 1e-9)
            assert machine["idle_kwh"] is not None, "1d machine energy carries its idle part"
            assert _number(idle_text) == pytest.approx(machine["idle_kwh"], abs=0.05 + 1e-9)
        alerts = _get(served, served.staff, f"/sites/{site}/alerts", open="true")
        table_rows = card.locator("div.alerts tbody tr")
        assert table_rows.count() == len(alerts)
        for i, alert in enumerate(alerts):
            cells = table_rows.nth(i).locator("td").all_text_contents()
            assert cells[0] == served.names[(site, alert["machine"])]
            assert cells[1] == alert["severity"]
            assert cells[3] == alert["reasons"][0]["text"]
            since = table_rows.nth(i).locator("time").get_attribute("datetime")
            assert since == alert["opened_at"]
    # Riverside's month ended weeks ago: its last day, a measured saving, the worn compressor.
    riverside = page.locator("section.site[data-site='riverside']")
    last_day = (PILOT_START + timedelta(days=PILOT_DAYS - 1)).date().isoformat()
    assert riverside.locator("p.day").get_attribute("data-day") == last_day
    assert riverside.locator("p.day").get_attribute("data-today") == "false"
    assert riverside.locator("div.alerts tbody td:first-child").all_text_contents() == [
        "Air compressor"
    ]
    (savings,) = _get(served, served.staff, "/sites/riverside/savings")
    assert savings["avoided_kwh"] > 0 and savings["payback_years"] is not None
    error_bars = riverside.locator("div.savings svg.error-bar text.value").all_text_contents()
    assert _number(error_bars[0]) == pytest.approx(savings["avoided_kwh"], abs=0.05 + 1e-9)
    band = savings["avoided_kwh"] * savings["fsu_pct"] / 100
    assert _number(error_bars[0].split("±")[1]) == pytest.approx(band, abs=0.05 + 1e-9)
    assert _number(error_bars[1]) == pytest.approx(savings["avoided_cost"], abs=0.005 + 1e-9)
    payback = riverside.locator("p.payback").text_content()
    assert f"payback in {savings['payback_years'] * 12:.1f} months" in str(payback)
    hillside = page.locator("section.site[data-site='hillside']")
    assert "No measured savings" in str(hillside.locator("div.savings").text_content())
    portfolio = page.locator("#portfolio svg g.bar")
    assert [portfolio.nth(i).get_attribute("data-key") for i in range(portfolio.count())] == [
        row["site"] for row in _get(served, served.staff, "/portfolio")
    ]
    # Bytes, written here: Playwright writes a file from a worker thread that outlives the test.
    picture = page.screenshot(full_page=True)
    (tmp_path / "overview.png").write_bytes(picture)
    if os.environ.get("TONLE_SCREENSHOT"):
        Path(os.environ["TONLE_SCREENSHOT"]).write_bytes(picture)
    assert opened.errors == []


def test_a_factory_token_sees_only_its_site(opened: Opened, served: Served) -> None:
    page = _load(opened, served, served.factory)
    assert page.eval_on_selector_all("section.site", "ns => ns.map(n => n.dataset.site)") == [
        "hillside"
    ]
    portfolio = page.eval_on_selector_all(
        "#portfolio svg g.bar", "ns => ns.map(n => n.dataset.key)"
    )
    assert portfolio == ["hillside"]
    assert "Riverside" not in str(page.text_content("body"))
    assert opened.errors == []


def test_markup_in_a_machine_name_stays_text(
    opened: Opened, served: Served, database_url: str
) -> None:
    name = '<img src=x onerror="document.title=1">Press <b>7</b> & "co"'
    update = (
        "UPDATE machines AS m SET name = %s FROM lines AS l, sites AS s "
        "WHERE l.id = m.line_id AND s.id = l.site_id AND s.site = 'hillside' AND m.machine = %s"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(update, (name, "sew-a01"))
    try:
        page = _load(opened, served, served.factory)
        bar = page.locator("svg.energy-chart g.bar[data-key='sewing-a/sew-a01']")
        label = bar.locator("text.label").text_content()
        assert _shows(label, bar.locator("title").text_content(), name)
        assert "<img" in str(label), "the name is shown as written, not as markup"
        assert page.locator("img").count() == 0 and page.locator("b").count() == 0
        assert page.title() == "Tonle — overview"
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(update, (served.names[("hillside", "sew-a01")], "sew-a01"))


def test_without_a_token_the_page_asks_for_one(opened: Opened, served: Served) -> None:
    page = opened.page
    page.goto(f"{served.url}/")
    form = page.locator("#token-panel")
    form.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    assert "tonle token create --role staff --name me" in str(form.text_content())
    assert page.locator("section.site").count() == 0
    # A token pasted into the form is used, and kept for the tab.
    page.fill("#token-input", served.factory)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("body[data-loaded='true']", timeout=LOAD_TIMEOUT_MS)
    assert page.locator("section.site").count() == 1
    assert not page.locator("#token-panel").is_visible()
    assert opened.errors == []


def test_a_refused_token_is_said_so_and_forgotten(opened: Opened, served: Served) -> None:
    page = opened.page
    page.goto(f"{served.url}/#token=not-a-token")
    error = page.locator("#error")
    error.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    assert "refused this token (401)" in str(error.text_content())
    assert "tonle token create --role staff --name me" in str(error.text_content())
    assert page.locator("#token-panel").is_visible()
    assert page.url == f"{served.url}/"
    assert page.evaluate("sessionStorage.getItem('tonle.token')") is None


def test_the_page_refreshes_every_minute(opened: Opened, served: Served, database_url: str) -> None:
    page = opened.page
    portfolio_requests: list[str] = []
    page.on("request", lambda r: portfolio_requests.append(r.url) if "/portfolio" in r.url else 0)
    page.clock.install()  # the page's timers run on a clock the test moves
    _load(opened, served, served.factory)
    update = (
        "UPDATE machines AS m SET name = %s FROM lines AS l, sites AS s "
        "WHERE l.id = m.line_id AND s.id = l.site_id AND s.site = 'hillside' AND m.machine = %s"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(update, ("Renamed machine", "sew-a02"))
    try:
        page.clock.run_for(59_000)
        assert len(portfolio_requests) == 1
        page.clock.run_for(2_000)
        label = page.locator("svg.energy-chart g.bar[data-key='sewing-a/sew-a02'] text.label")
        label.filter(has_text="Renamed machine").wait_for(timeout=LOAD_TIMEOUT_MS)
        assert len(portfolio_requests) == 2
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(update, (served.names[("hillside", "sew-a02")], "sew-a02"))
    assert opened.errors == []

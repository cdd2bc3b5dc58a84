// The overview page: reads the API with the visitor's token and draws the figures as SVG.
// Every string from the API goes into the page as text (textContent, setAttribute), never
// as markup, so a machine or site name cannot inject anything.
"use strict";

(function () {
  const TOKEN_KEY = "tonle.token";
  const REFRESH_MS = 60000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DAY_MS = 86400000;
  const TOKEN_HINT = "tonle token create --role staff --name me";

  let refreshTimer = null;
  let loading = false;

  // ------------------------------------------------------------------ DOM helpers

  function append(node, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return append(node, children);
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return append(node, children);
  }

  function show(id, visible) {
    document.getElementById(id).hidden = !visible;
  }

  // ------------------------------------------------------------------ formatting

  function number(value, digits) {
    return value.toLocaleString("en-US", {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
  }

  function kwh(value) {
    return number(value, 1) + " kWh";
  }

  function money(value, currency) {
    return number(value, 2) + (currency ? " " + currency : "");
  }

  function knownZone(timezone) {
    try {
      new Intl.DateTimeFormat("en-GB", { timeZone: timezone });
      return timezone;
    } catch (err) {
      return "UTC";
    }
  }

  // The local calendar day of an instant in a time zone, as YYYY-MM-DD.
  function localDay(instant, timezone) {
    return new Intl.DateTimeFormat("en-CA", {
      timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit",
    }).format(instant);
  }

  function localDayName(instant, timezone) {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: timezone, weekday: "long", day: "numeric", month: "long",
    }).format(instant);
  }

  function localTime(instant, timezone) {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: timezone, day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
      hour12: false,
    }).format(instant);
  }

  function isoDate(instant) {
    return new Date(instant).toISOString().slice(0, 10);
  }

  // ------------------------------------------------------------------ the token

  function tokenFromAddress() {
    if (!location.hash) return;
    const params = new URLSearchParams(location.hash.slice(1));
    const token = params.get("token");
    if (token === null) return;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    // The token must not stay in the address bar, the history or a bookmark.
    history.replaceState(null, "", location.pathname + location.search);
  }

  function currentToken() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function askForToken(message) {
    stopRefreshing();
    show("token-panel", true);
    show("portfolio", false);
    show("forget", false);
    document.getElementById("sites").replaceChildren();
    setStatus("Waiting for a token.");
    setError(message);
    document.getElementById("token-input").focus();
  }

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  async function api(path, params) {
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(params || {})) url.searchParams.set(name, value);
    const response = await fetch(url, {
      headers: { Authorization: "Bearer " + currentToken(), Accept: "application/json" },
      cache: "no-store",
    });
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const body = await response.json();
        if (body && typeof body.detail === "string") detail = body.detail;
      } catch (err) {
        // not a problem document: keep the status text
      }
      throw new ApiError(response.status, detail);
    }
    return response.json();
  }

  function sitePath(site, rest) {
    return "/sites/" + encodeURIComponent(site) + rest;
  }

  async function loadSite(site) {
    const timezone = knownZone(site.timezone);
    const now = new Date();
    const yearAgo = new Date(now.getTime() - 366 * DAY_MS);
    const [days, detail, alerts, savings] = await Promise.all([
      api(sitePath(site.site, "/energy"), {
        level: "site", grain: "1d", start: yearAgo.toISOString(),
      }),
      api(sitePath(site.site, "")),
      api(sitePath(site.site, "/alerts"), { open: "true" }),
      api(sitePath(site.site, "/savings")),
    ]);
    // Today in the site's own time zone, or the last day with data when today has none.
    let day = null;
    let machines = [];
    if (days.intervals.length > 0) {
      day = days.intervals[days.intervals.length - 1];
      const energy = await api(sitePath(site.site, "/energy"), {
        level: "machine", grain: "1d", start: day.bucket_start, end: day.bucket_end,
      });
      machines = energy.intervals;
    }
    return { site, timezone, now, day, machines, detail, alerts, savings };
  }

  // ------------------------------------------------------------------ charts

  // Horizontal bars: one row per item, a label on the left, the value in text beside the bar.
  function barChart(caption, rows, options) {
    // Sized for the panel at 1280 px wide, so that 14 px text stays about 14 px.
    const width = 690;
    const labelWidth = 210;
    const valueWidth = 210;
    const rowHeight = 28;
    const plot = width - labelWidth - valueWidth;
    const height = rows.length * rowHeight + 8;
    const top = Math.max(0, ...rows.map((row) => row.value));
    const scale = top > 0 ? plot / top : 0;
    const titleId = "t" + Math.random().toString(36).slice(2);
    const chart = svg("svg", {
      class: "chart " + (options.kind || ""),
      viewBox: `0 0 ${width} ${height}`,
      role: "group",
      "aria-labelledby": titleId,
    }, svg("title", { id: titleId }, caption));
    rows.forEach((row, index) => {
      const y = 4 + index * rowHeight;
      const barWidth = Math.max(row.value * scale, row.value > 0 ? 1 : 0);
      const group = svg("g", { class: "bar", "data-key": row.key },
        svg("title", {}, row.tooltip),
        svg("text", {
          class: "label", x: labelWidth - 8, y: y + 19, "text-anchor": "end",
          "data-fit": labelWidth - 12,
        }, row.label),
        svg("rect", { class: "whole", x: labelWidth, y: y + 4, width: barWidth, height: 20 }));
      if (row.part > 0) {
        const partWidth = Math.min(barWidth, row.part * scale);
        group.appendChild(svg("rect", {
          class: "part", x: labelWidth + barWidth - partWidth, y: y + 4,
          width: partWidth, height: 20,
        }));
      }
      group.appendChild(svg("text", { class: "value", x: labelWidth + barWidth + 8, y: y + 19 },
        row.text));
      chart.appendChild(group);
    });
    return chart;
  }

  // One value with its uncertainty: a bar from zero and an error bar of ± the band.
  function errorBar(caption, value, band, text) {
    const width = 460;
    const height = 40;
    const left = 8;
    const plot = 250;
    const low = Math.min(0, value - band);
    const high = Math.max(0, value + band);
    const span = high - low || 1;
    const at = (v) => left + ((v - low) / span) * plot;
    const zero = at(0);
    const chart = svg("svg", {
      class: "chart error-bar", viewBox: `0 0 ${width} ${height}`, role: "group",
    }, svg("title", {}, caption + ": " + text));
    chart.appendChild(svg("rect", {
      class: value >= 0 ? "whole" : "negative", x: Math.min(zero, at(value)), y: 10,
      width: Math.abs(at(value) - zero), height: 20,
    }));
    chart.appendChild(svg("line", { class: "axis", x1: zero, x2: zero, y1: 4, y2: 36 }));
    const y = 20;
    chart.appendChild(svg("g", { class: "whisker" },
      svg("line", { x1: at(value - band), x2: at(value + band), y1: y, y2: y }),
      svg("line", { x1: at(value - band), x2: at(value - band), y1: y - 7, y2: y + 7 }),
      svg("line", { x1: at(value + band), x2: at(value + band), y1: y - 7, y2: y + 7 })));
    chart.appendChild(svg("text", { class: "value", x: left + plot + 12, y: 25 }, text));
    return chart;
  }

  // ------------------------------------------------------------------ sections

  function machineNames(detail) {
    const names = new Map();
    for (const line of detail.lines) {
      for (const machine of line.machines) {
        names.set(line.line + "/" + machine.machine, machine.name || machine.machine);
      }
    }
    return names;
  }

  function energySection(view) {
    const { site, timezone, now, day, machines, detail } = view;
    const section = el("div", { class: "panel energy" });
    if (day === null) {
      section.appendChild(el("h3", {}, "Energy by machine"));
      section.appendChild(el("p", { class: "empty" }, "No energy results in the last year."));
      return section;
    }
    const start = new Date(day.bucket_start);
    const dayText = localDay(start, timezone);
    const isToday = dayText === localDay(now, timezone);
    section.appendChild(el("h3", {}, "Energy by machine, " +
      (isToday ? "today" : localDayName(start, timezone))));
    section.appendChild(el("p", { class: "day", "data-day": dayText, "data-today": String(isToday) },
      isToday
        ? `Today, ${dayText} (${timezone}), so far.`
        : `No results yet today; showing ${dayText}, the last day with data (${timezone}).`));
    const names = machineNames(detail);
    const rows = machines
      .slice()
      .sort((a, b) => b.energy_kwh - a.energy_kwh)
      .map((m) => {
        const label = names.get(m.line + "/" + m.machine) || m.machine;
        const idle = m.idle_kwh === null ? null : m.idle_kwh;
        return {
          key: m.line + "/" + m.machine,
          label,
          value: m.energy_kwh,
          part: idle || 0,
          text: kwh(m.energy_kwh) + (idle === null ? "" : ", idle " + kwh(idle)),
          tooltip: `${label} (${m.line}/${m.machine}): ${kwh(m.energy_kwh)}` +
            (idle === null ? "" : `, of which ${kwh(idle)} while idle`) +
            `; ${number(m.completeness * 100, 0)} % of samples present`,
        };
      });
    if (rows.length === 0) {
      section.appendChild(el("p", { class: "empty" }, "No machine-level energy on this day."));
      return section;
    }
    section.appendChild(barChart(`Energy by machine on ${dayText}; the light part was drawn idle`,
      rows, { kind: "energy-chart" }));
    const idleKwh = machines.reduce((sum, m) => sum + (m.idle_kwh || 0), 0);
    const idleCost = machines.reduce((sum, m) => sum + (m.idle_cost || 0), 0);
    const currency = (machines.find((m) => m.currency) || {}).currency || "";
    const totalKwh = machines.reduce((sum, m) => sum + m.energy_kwh, 0);
    section.appendChild(el("p", { class: "legend" },
      el("span", { class: "key whole" }), " working ",
      el("span", { class: "key part" }), " idle — ",
      el("span", { class: "idle-total" },
        `machines drew ${kwh(totalKwh)}; ${kwh(idleKwh)} of it while idle` +
        (currency ? ` (${money(idleCost, currency)})` : "") + `; site total ${kwh(day.energy_kwh)}`)));
    return section;
  }

  function savingsSection(view) {
    const section = el("div", { class: "panel savings" }, el("h3", {}, "Pilot savings"));
    const result = view.savings.find((s) => s.granularity === "hourly") || view.savings[0];
    if (!result) {
      section.appendChild(el("p", { class: "empty" },
        "No measured savings: the site has no pilot baseline yet, or too little data for one."));
      return section;
    }
    const period = `${isoDate(result.reporting_start)} to ${isoDate(result.reporting_end)}`;
    if (result.avoided_kwh === null) {
      section.appendChild(el("p", { class: "empty" },
        `Baseline fitted; the reporting period (${period}) has too little data for savings yet.`));
      return section;
    }
    const fraction = (result.fsu_pct || 0) / 100;
    const kwhBand = Math.abs(result.avoided_kwh) * fraction;
    if (result.reporting_kwh !== null && result.adjusted_baseline_kwh !== null) {
      section.appendChild(el("p", { class: "note" },
        `Reporting period ${period}: measured ${kwh(result.reporting_kwh)} against a baseline ` +
        `of ${kwh(result.adjusted_baseline_kwh)}.`));
    }
    section.appendChild(el("p", { class: "figure-label" }, "Energy avoided"));
    section.appendChild(errorBar("Energy avoided", result.avoided_kwh, kwhBand,
      `${kwh(result.avoided_kwh)} ± ${number(kwhBand, 1)}` +
      (result.savings_pct === null ? "" : ` (${number(result.savings_pct, 1)} %)`)));
    if (result.avoided_cost !== null) {
      const costBand = Math.abs(result.avoided_cost) * fraction;
      section.appendChild(el("p", { class: "figure-label" }, "Money saved"));
      section.appendChild(errorBar("Money saved", result.avoided_cost, costBand,
        `${money(result.avoided_cost, result.currency)} ± ${number(costBand, 2)}`));
    }
    const payback = result.payback_years === null
      ? "no payback yet: nothing saved to pay the investment back"
      : `payback in ${number(result.payback_years * 12, 1)} months`;
    section.appendChild(el("p", { class: "payback" },
      el("strong", {}, payback),
      ` (investment ${money(result.investment, result.currency)}` +
      (result.annual_avoided_cost === null ? ")" :
        `, ${money(result.annual_avoided_cost, result.currency)} a year)`)));
    section.appendChild(el("p", { class: "note" },
      `Error bars: ± the fractional savings uncertainty (68 %), ${number(result.fsu_pct || 0, 1)} %. ` +
      `Baseline ${result.meets_guideline14 ? "meets" : "does not meet"} ASHRAE Guideline 14 ` +
      `(CV(RMSE) ${number(result.cv_rmse_pct, 1)} %, NMBE ${number(result.nmbe_pct, 2)} %).`));
    return section;
  }

  function reasonOf(alert) {
    const texts = alert.reasons
      .map((r) => (typeof r.text === "string" ? r.text : typeof r.feature === "string" ? r.feature : ""))
      .filter((t) => t);
    return texts.length > 0 ? texts[0] : "—";
  }

  function alertsSection(view) {
    const { alerts, detail, timezone } = view;
    const section = el("div", { class: "panel alerts" },
      el("h3", {}, `Open alerts (${alerts.length})`));
    if (alerts.length === 0) {
      section.appendChild(el("p", { class: "empty" }, "No open maintenance alerts."));
      return section;
    }
    const names = machineNames(detail);
    const body = el("tbody");
    for (const alert of alerts) {
      const reason = reasonOf(alert);
      const allReasons = alert.reasons.map((r) => r.text).filter((t) => typeof t === "string");
      body.appendChild(el("tr", { "data-alert": String(alert.alert_id) },
        el("td", {}, names.get(alert.line + "/" + alert.machine) || alert.machine),
        el("td", {}, el("span", { class: "severity " + alert.severity }, alert.severity)),
        el("td", {}, el("time", { datetime: alert.opened_at }, localTime(new Date(alert.opened_at), timezone))),
        el("td", { title: allReasons.join("\n") }, reason)));
    }
    section.appendChild(el("table", {},
      el("caption", {}, `Open maintenance alerts, times in ${timezone}`),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, "Machine"), el("th", { scope: "col" }, "Severity"),
        el("th", { scope: "col" }, "Since"), el("th", { scope: "col" }, "Reason"))),
      body));
    return section;
  }

  function siteCard(view) {
    const { site } = view;
    return el("section", { class: "card site", "data-site": site.site },
      el("h2", {}, site.name || site.site,
        el("span", { class: "site-id" }, ` ${site.site} · ${view.timezone}` +
          (site.sector ? ` · ${site.sector}` : ""))),
      el("div", { class: "grid" }, energySection(view), savingsSection(view)),
      alertsSection(view));
  }

  function portfolioChart(rows) {
    const width = 1160;
    const rowHeight = 32;
    const labelWidth = 200;
    const height = rows.length * rowHeight + 34;
    const topKwh = Math.max(0, ...rows.map((r) => r.energy_kwh));
    const topPct = Math.max(0, ...rows.map((r) => Math.abs(r.savings_pct || 0)));
    const chart = svg("svg", {
      class: "chart portfolio-chart", viewBox: `0 0 ${width} ${height}`, role: "group",
    }, svg("title", {}, "Energy and savings of each site in its period"));
    const headX = [labelWidth, 590, 880];  // energy, savings, the rest
    const energyBar = 190;
    const savingsBar = 120;
    ["Energy in period", "Savings", "Uptime · alerts · data complete"].forEach((text, i) => {
      chart.appendChild(svg("text", { class: "head", x: headX[i], y: 16 }, text));
    });
    rows.forEach((row, index) => {
      const y = 26 + index * rowHeight;
      const label = row.name || row.site;
      const energyWidth = topKwh > 0 ? (row.energy_kwh / topKwh) * energyBar : 0;
      const pct = row.savings_pct;
      const pctWidth = pct === null || topPct === 0 ? 0 : (Math.abs(pct) / topPct) * savingsBar;
      const savingsText = pct === null
        ? "no pilot result"
        : `${number(pct, 1)} %` + (row.avoided_cost === null ? "" : `, ${money(row.avoided_cost, row.currency)}`);
      const facts = [
        row.uptime === null ? "uptime —" : `uptime ${number(row.uptime * 100, 0)} %`,
        `${row.open_alerts} open alert${row.open_alerts === 1 ? "" : "s"}`,
        row.completeness === null ? "data —" : `${number(row.completeness * 100, 0)} % data`,
      ].join(" · ");
      const x2 = headX[1];
      chart.appendChild(svg("g", { class: "bar", "data-key": row.site },
        svg("title", {}, `${label}: ${kwh(row.energy_kwh)} over ${row.period} ` +
          `(${isoDate(row.period_start)} to ${isoDate(row.period_end)}); savings ${savingsText}; ${facts}`),
        svg("text", {
          class: "label", x: labelWidth - 10, y: y + 19, "text-anchor": "end",
          "data-fit": labelWidth - 14,
        }, label),
        svg("rect", { class: "whole", x: labelWidth, y: y + 4, width: Math.max(energyWidth, 1), height: 20 }),
        svg("text", { class: "value", x: labelWidth + energyWidth + 8, y: y + 19 },
          `${kwh(row.energy_kwh)} (${row.period})`),
        svg("rect", { class: pct !== null && pct < 0 ? "negative" : "saving", x: x2, y: y + 4, width: pctWidth, height: 20 }),
        svg("text", { class: "value", x: x2 + pctWidth + 8, y: y + 19 }, savingsText),
        svg("text", { class: "value facts", x: headX[2], y: y + 19 }, facts)));
    });
    return chart;
  }

  // Shorten labels wider than their column (measured once drawn); the row's <title>
  // keeps the whole name.
  function fitLabels(root) {
    for (const label of root.querySelectorAll("text[data-fit]")) {
      const room = Number(label.getAttribute("data-fit"));
      const whole = label.textContent;
      let keep = whole.length;
      while (keep > 1 && label.getComputedTextLength() > room) {
        keep -= 1;
        label.textContent = whole.slice(0, keep).trimEnd() + "…";
      }
    }
  }

  // ------------------------------------------------------------------ refresh

  function setStatus(text) {
    document.getElementById("status").textContent = text;
  }

  function setError(text) {
    const box = document.getElementById("error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function stopRefreshing() {
    if (refreshTimer !== null) clearInterval(refreshTimer);
    refreshTimer = null;
  }

  async function refresh() {
    if (loading || !currentToken()) return;
    loading = true;
    try {
      const [sites, portfolio] = await Promise.all([api("/sites"), api("/portfolio")]);
      const views = await Promise.all(sites.map(loadSite));
      show("token-panel", false);
      show("forget", true);
      setError("");
      document.getElementById("portfolio-chart").replaceChildren(
        portfolio.length > 0 ? portfolioChart(portfolio) : el("p", { class: "empty" }, "No sites."));
      show("portfolio", true);
      document.getElementById("sites").replaceChildren(...views.map(siteCard));
      fitLabels(document.body);
      const count = `${sites.length} site${sites.length === 1 ? "" : "s"}`;
      setStatus(`${count} · updated ${new Date().toLocaleTimeString("en-GB")} · refreshes every 60 s`);
      document.body.setAttribute("data-loaded", "true");
      if (refreshTimer === null) refreshTimer = setInterval(refresh, REFRESH_MS);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        askForToken(`The API refused this token (401): ${err.detail}. ` +
          `Make a new one with \`${TOKEN_HINT}\`.`);
      } else if (err instanceof ApiError && err.status === 403) {
        askForToken(`This token may not read these figures (403): ${err.detail}.`);
      } else {
        // Keep what is shown; say it is stale.
        setError(`Could not refresh: ${err instanceof ApiError ? err.status + " " + err.detail : err}. ` +
          "The figures below may be out of date; the page tries again in 60 s.");
        if (refreshTimer === null) refreshTimer = setInterval(refresh, REFRESH_MS);
      }
    } finally {
      loading = false;
    }
  }

  function start() {
    tokenFromAddress();
    document.getElementById("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("token-input");
      const token = input.value.trim();
      input.value = "";
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      setError("");
      setStatus("Loading…");
      refresh();
    });
    document.getElementById("forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken("");
    });
    if (currentToken()) {
      refresh();
    } else {
      askForToken("");
    }
  }

  start();
})();

"""`tonle analytics run`, predictive maintenance: health models, hourly health and alerts.

The lifecycle of :func:`analytics.monitor.monitor`, applied one run at a time to what the
database holds, for every machine with condition metrics:

- **Segments.** A machine's history starts at the hour of its first condition reading and
  is cut at each reset, rounded up to the next hour: the entries of ``maintenance_log``
  up to the end of the run, among them the ends of fault spells of at least
  :data:`MIN_REPAIR_MS` in ``machine_states`` (recorded in the log as ``inferred`` repairs).
  A reset retires the active model at that hour.
- **Learning.** A segment's first model is fitted on ``[segment start, learnt)``, where
  ``learnt`` is when the segment has had 7 days and 24 hours with readings (monitor's
  rule), once the run has reached past it; until then the machine is *learning* and gets
  no health rows. Should that fit fail (too few running windows), the learning period is
  extended a day at a time, up to :data:`~analytics.monitor.LEARN_SEARCH_MS`, as monitor
  does; after that the machine has no model until its next reset.
- **Retraining.** Every 30 days after the segment's first model started assessing, a
  candidate is fitted on the 7 days before that point and :func:`~analytics.monitor.review`
  decides, with the scores stored for those days, whether it replaces the active model.
  Each attempt is a row (``trained_to`` is the point); a refused or failed one is retried
  at the next point, 30 days later, exactly as ``monitor`` does — never on every run. A
  point the runs went past without reaching is taken up by the next run, which then
  assesses from 7 days before it, so the stored scores exist.
- **Health.** The windows of the run, ``(floor(start), floor(end)]`` on whole UTC hours,
  are assessed by the model valid at each window (a rerun over an old period uses the
  models of that time, never a newer one), with readings from 2 days before for the
  trend and the smoothing. Windows with a score are stored; a rerun replaces them.
- **Hours to failure.** With an active fleet-wide RUL model (``tonle analytics
  train-rul``), the life of each segment the run touched is rebuilt from its stored
  health rows since the segment's start (the rows :func:`~analytics.rul_hours.health_rows`
  gives, in order), and the estimates of its windows in the run's period are stored in
  ``rul_estimates`` (an estimate depends only on the windows before it, so a rerun writes
  the same values). Estimates whose health row has gone are removed. Without a RUL model
  the report says so once, and nothing else changes.
- **Alerts.** The stored health of each segment the run touched (the last
  :data:`ALERT_HORIZON_MS`, reaching back to the opening of an alert still standing then)
  is turned into episodes by :func:`~analytics.monitor.alerts_of`. An episode still open
  at a reset is closed there (also when the reset is logged after the fact). Episodes
  are upserted by (site, machine, opened_at), which keeps acknowledgements;
  unacknowledged alerts of that range that no longer exist are deleted, acknowledged
  ones are kept.

Runs go forward in time. A rerun over an old period fits nothing for a segment that a
later segment's model has superseded. Each machine is one transaction: a machine whose
model fails its checksum is skipped (and reported), the others carry on.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

import numpy as np

from analytics.condition import (
    CONDITION_METRICS,
    LOAD_METRICS,
    LOAD_STALENESS_MS,
    Samples,
    Windows,
    align,
)
from analytics.health import Assessment, HealthModel
from analytics.model_registry import (
    Fit,
    MachineRef,
    ModelIntegrityError,
    StoredModel,
    get_model,
    list_models,
    load_active_rul,
    load_model,
    promote,
    record_rejected,
    retire_active,
)
from analytics.monitor import (
    DEFAULT_RULE,
    LEARN_SEARCH_MS,
    MS_PER_DAY,
    alerts_of,
    learning_end,
    review,
)
from analytics.rul_hours import CAP_H, HoursToFailure, Life, health_rows
from analytics.series import MS_PER_HOUR, from_ms, to_ms
from analytics.store import (
    Conn,
    HealthRows,
    LogEntry,
    SensorRef,
    acknowledge,
    alert_row,
    delete_alerts,
    delete_health,
    delete_rul,
    earliest_standing_alert,
    fault_runs,
    first_reading,
    health_scores,
    jsonable,
    load_health,
    load_series,
    log_maintenance,
    maintenance_log_of,
    note_run,
    site_sensors,
    upsert,
)
from tonle.errors import TonleError

log = logging.getLogger(__name__)

MODEL_VERSION: Final = "health-1"
LEARN_MS: Final = 7 * MS_PER_DAY  # a segment's healthy period, and a retrain's window
RETRAIN_MS: Final = 30 * MS_PER_DAY
LOOKBACK_MS: Final = 2 * MS_PER_DAY  # read before a window for its trend and smoothing
MIN_REPAIR_MS: Final = MS_PER_HOUR  # shorter faults are jams and minor stops, not repairs
FAULT_SCAN_MS: Final = MS_PER_DAY  # faults ending this long before a run are seen again
ALERT_HORIZON_MS: Final = 60 * MS_PER_DAY
ALERT_LOOKBACK_MS: Final = MS_PER_DAY  # before a standing alert's opening, all was quiet
RULE: Final = DEFAULT_RULE
WINDOW_MS: Final = MS_PER_HOUR
NO_RUL_MODEL: Final = "no RUL model: run `tonle analytics train-rul`"

Progress = Callable[[str], None]


class AlertNotFoundError(TonleError):
    """No maintenance alert has this id."""


class AlertAcknowledgedError(TonleError):
    """The alert was acknowledged already; the first acknowledgement stands."""


@dataclass(frozen=True)
class AlertRecord:
    """A row of ``maintenance_alerts``."""

    alert_id: int
    site: str
    line: str
    machine: str
    opened_at: datetime
    closed_at: datetime | None
    severity: str
    min_health: float
    peak_at: datetime
    peak_score: float
    reasons: list[dict[str, Any]]
    model_id: int
    run_id: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None


@dataclass
class MaintenanceReport:
    """What a maintenance run wrote, per table, and where each machine stands.

    ``rul`` names the RUL model the run used, or says why there was none.
    """

    run_id: int
    site: str
    start: datetime
    end: datetime
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    machines: dict[str, str] = field(default_factory=dict)
    rul: str = ""
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The report as the run's summary records it."""
        return {
            "rows": dict(self.rows),
            "machines": self.machines,
            "rul": self.rul,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class _Machine:
    ref: MachineRef
    sensors: dict[str, SensorRef]


def _floor(ms: int) -> int:
    return ms - ms % WINDOW_MS


def _ceil(ms: int) -> int:
    return -(-ms // WINDOW_MS) * WINDOW_MS


def _iso(ms: int) -> str:
    return from_ms(ms).isoformat()


def _condition_machines(site: str, sensors: list[SensorRef]) -> list[_Machine]:
    """The machines with a condition metric, with their condition and load sensors."""
    grouped: dict[tuple[str, str], dict[str, SensorRef]] = defaultdict(dict)
    for ref in sensors:
        grouped[(ref.line, ref.machine)][ref.metric] = ref
    machines = []
    for (line, machine), by_metric in sorted(grouped.items()):
        if any(m in by_metric for m in CONDITION_METRICS):
            wanted = (*CONDITION_METRICS, *LOAD_METRICS)
            sensors_of = {m: by_metric[m] for m in wanted if m in by_metric}
            machines.append(_Machine(MachineRef(site, line, machine), sensors_of))
    return machines


@dataclass(frozen=True)
class _Segment:
    """``[start_ms, end_ms)`` between resets (``end_ms`` None: still going on)."""

    start_ms: int
    end_ms: int | None
    reset: str | None  # what started it; None for the machine's first readings


class MaintenanceJob:
    """One run over one site and period; :meth:`run` writes every maintenance table."""

    def __init__(
        self,
        conn: Conn,
        site: str,
        start: datetime,
        end: datetime,
        run_id: int,
        progress: Progress | None = None,
    ) -> None:
        self.conn = conn
        self.site = site
        self.start, self.end = start, end
        self.run_id = run_id
        self.say = progress or (lambda message: log.info("%s", message))
        self.first_ms = _floor(to_ms(start))  # windows ending in (first_ms, last_ms]
        self.last_ms = _floor(to_ms(end))
        self.report = MaintenanceReport(run_id, site, start, end)
        self._models: dict[int, HealthModel] = {}
        self._rul: tuple[StoredModel, HoursToFailure] | None = None

    # ----------------------------------------------------------------- the run

    def run(self) -> MaintenanceReport:
        """Compute and store the maintenance results of every machine with condition metrics."""
        began = time.monotonic()
        try:
            machines = _condition_machines(self.site, site_sensors(self.conn, self.site))
            if machines:
                self._rul = self._load_rul()
            for machine in machines:
                key = f"{machine.ref.line}/{machine.ref.machine}"
                try:
                    with self.conn.transaction():
                        self.report.machines[key] = self._machine(machine)
                except ModelIntegrityError as exc:
                    log.warning("%s/%s skipped: %s", self.site, key, exc)
                    self.report.machines[key] = f"skipped: {exc}"
                self.say(f"{self.site}: {key} {self.report.machines[key]}")
        except BaseException as exc:
            note_run(self.conn, self.run_id, {"maintenance": self.report.summary()},
                     f"maintenance: {type(exc).__name__}: {exc}")  # fmt: skip
            raise
        self.report.seconds = round(time.monotonic() - began, 2)
        note_run(self.conn, self.run_id, {"maintenance": self.report.summary()})
        return self.report

    def _count(self, table: str, n: int) -> None:
        self.report.rows[table] += n

    def _machine(self, machine: _Machine) -> str:
        ref = machine.ref
        condition = [s.sensor_id for m, s in machine.sensors.items() if m in CONDITION_METRICS]
        first = first_reading(self.conn, condition)
        if first is None:
            return "no condition readings"
        segments = self._segments(machine, _floor(to_ms(first)))
        status = "no readings in the period"
        later_models = {
            to_ms(m.segment_start) for m in list_models(self.conn, ref.site, ref.machine)
        }
        for segment in segments:
            if segment.start_ms >= self.last_ms:
                break
            if segment.end_ms is not None and segment.end_ms <= self.first_ms:
                # A reset logged after the fact closes the alerts of what went before it.
                if self._outlived(machine, segment):
                    self._alerts(machine, segment)
                continue
            superseded = any(s > segment.start_ms for s in later_models)
            status = self._segment(machine, segment, superseded)
            self._alerts(machine, segment)
            latest = self._hours_to_failure(machine, segment)
            if latest:
                status = f"{status}; {latest}"
        return status

    # -------------------------------------------------------------- segments

    def _segments(self, machine: _Machine, first_ms: int) -> list[_Segment]:
        """The machine's segments: cut at each reset up to the end of the run."""
        ref = machine.ref
        since = from_ms(to_ms(self.start) - FAULT_SCAN_MS)
        faults = fault_runs(self.conn, ref.site, ref.line, ref.machine, since, self.end)
        added = log_maintenance(self.conn, ref.site, ref.line, ref.machine, _repairs(faults))
        self._count("maintenance_log", added)
        cuts: dict[int, str] = {}
        for entry in maintenance_log_of(self.conn, ref.site, ref.machine, self.end):
            at = _ceil(to_ms(entry.at))
            if at > first_ms:
                cuts.setdefault(at, f"{entry.kind} ({entry.source}) on {entry.at.isoformat()}")
        starts = [(first_ms, None), *sorted(cuts.items())]
        return [
            _Segment(start, nxt[0] if nxt else None, reason)
            for (start, reason), nxt in itertools.zip_longest(starts, starts[1:])
        ]

    def _segment(self, machine: _Machine, segment: _Segment, superseded: bool) -> str:
        """Learn, assess and retrain within one segment; return where the machine stands."""
        ref = machine.ref
        s0 = segment.start_ms
        hi = self.last_ms if segment.end_ms is None else min(segment.end_ms, self.last_ms)
        if segment.reset is not None:
            reason = f"reset at {_iso(s0)}: {segment.reset}"
            retire_active(self.conn, ref.site, ref.machine, from_ms(s0), reason, before=from_ms(s0))
        mine = [
            m for m in list_models(self.conn, ref.site, ref.machine)
            if to_ms(m.segment_start) == s0
        ]  # fmt: skip
        used = sorted((m for m in mine if m.valid_from is not None), key=_valid_from_ms)
        if not used:
            if superseded:
                return "no model for this part of its history"
            learnt = self._learn(machine, segment, hi)
            if isinstance(learnt, str):
                delete_health(self.conn, ref.site, ref.machine, from_ms(s0), from_ms(hi))
                return learnt
            used = [learnt]
            mine.append(learnt)
        chain_ms = _valid_from_ms(used[0])
        delete_health(self.conn, ref.site, ref.machine, from_ms(s0), from_ms(chain_ms))
        attempted = {to_ms(m.trained_to) for m in mine}
        stop_ms = hi if segment.end_ms is None else min(hi, segment.end_ms - 1)
        pending = [
            t for t in range(chain_ms + RETRAIN_MS, stop_ms + 1, RETRAIN_MS)
            if t not in attempted and not superseded
        ]  # fmt: skip
        x = max(self.first_ms, chain_ms)
        if pending:
            x = max(chain_ms, min(x, pending[0] - LEARN_MS))
        if x >= hi:
            return f"monitored by model {used[-1].model_id}"
        samples = self._samples(machine, max(s0, x - LOOKBACK_MS), hi)
        while x < hi:
            current = [m for m in used if _valid_from_ms(m) <= x][-1]
            ahead = [_valid_from_ms(m) for m in used if _valid_from_ms(m) > x]
            due = [t for t in pending if t > x]
            until = min([hi, *ahead[:1], *due[:1]])
            self._assess(machine, current, samples, x, until, chain_ms)
            x = until
            if due and x == due[0]:
                promoted = self._retrain(machine, segment, current, samples, x)
                if promoted is not None:
                    used.append(promoted)
        return f"monitored by model {used[-1].model_id}"

    # -------------------------------------------------------------- learning

    def _learn(self, machine: _Machine, segment: _Segment, hi: int) -> StoredModel | str:
        """Fit the segment's first model once the run has gone past its learning period."""
        s0 = segment.start_ms
        end = min(hi, s0 + LEARN_MS + LEARN_SEARCH_MS)
        if end <= s0:
            return f"learning since {_iso(s0)}"
        samples = self._samples(machine, s0, end)
        learnt = learning_end(samples, HealthModel(), s0, end, LEARN_MS)
        if learnt >= end:
            if end < hi:
                return f"no model: too few readings to learn from after {_iso(s0)}"
            return f"learning since {_iso(s0)}"
        failure = ""
        for attempt in range(learnt, end, MS_PER_DAY):
            model = HealthModel()
            try:
                model.fit(samples, s0, attempt)
            except ValueError as exc:
                failure = failure or str(exc)
                continue
            after = "a reset" if segment.reset is not None else "its first readings"
            reason = f"fitted on the first healthy period after {after}"
            if attempt > learnt:
                days = (attempt - learnt) // MS_PER_DAY
                reason += f" (learning extended by {days} d: {failure})"
            fit = Fit(from_ms(s0), from_ms(s0), from_ms(attempt), reason, MODEL_VERSION,
                      self._figures(model, samples, s0, attempt))  # fmt: skip
            model_id = promote(self.conn, machine.ref, model, fit, valid_from=from_ms(attempt),
                               retire_reason=f"a new segment began at {_iso(s0)}",
                               run_id=self.run_id)  # fmt: skip
            self._count("maintenance_models", 1)
            self._models[model_id] = model
            return get_model(self.conn, model_id)
        if end < hi:
            return f"no model: {failure}"
        return f"learning since {_iso(s0)} ({failure})"

    def _retrain(
        self,
        machine: _Machine,
        segment: _Segment,
        active: StoredModel,
        samples: Samples,
        t: int,
    ) -> StoredModel | None:
        """Fit a candidate on the 7 days before ``t``; promote it if review accepts it."""
        ref = machine.ref
        since = t - LEARN_MS
        candidate = HealthModel()
        fit = Fit(from_ms(segment.start_ms), from_ms(since), from_ms(t), "", MODEL_VERSION, {})
        self._count("maintenance_models", 1)
        try:
            candidate.fit(samples, since, t)
        except ValueError as exc:
            failed = replace(fit, reason=f"could not fit: {exc}")
            record_rejected(self.conn, ref, None, failed, run_id=self.run_id)
            return None
        scores = health_scores(self.conn, ref.site, ref.machine, from_ms(since), from_ms(t))
        accepted, why = review(self._model(active), candidate, samples, since, t, scores, RULE)
        fit = replace(fit, reason=why, metrics=self._figures(candidate, samples, since, t))
        if not accepted:
            record_rejected(self.conn, ref, candidate, fit, run_id=self.run_id)
            return None
        model_id = promote(self.conn, ref, candidate, fit, valid_from=from_ms(t),
                           retire_reason=f"replaced by a model retrained at {_iso(t)}",
                           run_id=self.run_id)  # fmt: skip
        self._models[model_id] = candidate
        return get_model(self.conn, model_id)

    @staticmethod
    def _figures(
        model: HealthModel, samples: Samples, start_ms: int, end_ms: int
    ) -> dict[str, Any]:
        """The model's summary, and how its own training period scores."""
        scores = model.assess(samples, start_ms, end_ms).score
        finite = scores[np.isfinite(scores)]
        figures: dict[str, Any] = model.summary()
        figures["training_windows_scored"] = int(finite.size)
        if finite.size:
            figures["training_alert_share"] = float(np.mean(finite >= RULE.open_at))
            figures["training_score_p50"] = float(np.percentile(finite, 50))
            figures["training_score_p95"] = float(np.percentile(finite, 95))
        return figures

    # ------------------------------------------------------------ assessing

    def _model(self, stored: StoredModel) -> HealthModel:
        if stored.model_id not in self._models:
            self._models[stored.model_id] = load_model(self.conn, stored.model_id)
        return self._models[stored.model_id]

    def _samples(self, machine: _Machine, start_ms: int, end_ms: int) -> Samples:
        """The machine's condition readings in [start, end) with the load read before each."""
        series = {}
        for metric, ref in machine.sensors.items():
            # A load reading up to LOAD_STALENESS_MS old describes the first samples.
            lead = LOAD_STALENESS_MS if metric in LOAD_METRICS else 0
            series[metric] = load_series(
                self.conn, ref.sensor_id, from_ms(start_ms - lead), from_ms(end_ms)
            )
        return align(series)

    def _assess(
        self,
        machine: _Machine,
        stored: StoredModel,
        samples: Samples,
        start_ms: int,
        end_ms: int,
        chain_ms: int,
    ) -> None:
        """Store the health of the windows ending in (start, end] as ``stored`` sees them."""
        ref = machine.ref
        model = self._model(stored)
        # HealthModel.assess looks back far enough for the trend of a window, but not for
        # the trends of the windows its smoothing takes in, so its first few windows depend
        # on where it starts. monitor() starts at the learning end and at each retrain
        # point; so does this, and elsewhere it starts early enough that nothing depends
        # on where a run begins.
        since_chunk = (start_ms - chain_ms) // RETRAIN_MS * RETRAIN_MS + chain_ms
        begin = max(since_chunk, start_ms - (model.smooth_windows - 1) * model.window_ms)
        result = model.assess(samples, begin, end_ms)
        w = result.windows
        rows = []
        for i in np.nonzero(np.isfinite(result.score) & (w.end_ms > start_ms))[0]:
            rows.append(
                (ref.site, ref.line, ref.machine, from_ms(int(w.end_ms[i])),
                 float(result.health[i]), float(result.score[i]), jsonable(float(w.load[i])),
                 int(w.count[i]), jsonable({k: v[i] for k, v in result.z.items()}),
                 jsonable({k: v[i] for k, v in result.change.items()}), stored.model_id)
            )  # fmt: skip
        delete_health(self.conn, ref.site, ref.machine, from_ms(start_ms), from_ms(end_ms))
        self._count("machine_health", upsert(self.conn, "machine_health", self.run_id, rows))

    # --------------------------------------------------------------- alerts

    def _outlived(self, machine: _Machine, segment: _Segment) -> bool:
        """Whether an alert of the segment is stored as standing past the segment's end."""
        assert segment.end_ms is not None
        ref, end = machine.ref, from_ms(segment.end_ms)
        return (
            earliest_standing_alert(
                self.conn, ref.site, ref.machine, from_ms(segment.start_ms), end, end
            )
            is not None
        )

    def _alerts(self, machine: _Machine, segment: _Segment) -> None:
        """Recompute the alerts of a segment from its stored health."""
        ref = machine.ref
        s0 = segment.start_ms
        end = self.last_ms if segment.end_ms is None else min(segment.end_ms, self.last_ms)
        if end <= s0:
            return
        begin = max(s0, end - ALERT_HORIZON_MS)
        standing = earliest_standing_alert(
            self.conn, ref.site, ref.machine, from_ms(s0), from_ms(begin),
            from_ms(begin - RULE.merge_gap_ms),
        )  # fmt: skip
        if standing is not None:
            begin = max(s0, to_ms(standing) - ALERT_LOOKBACK_MS)
        stored = load_health(self.conn, ref.site, ref.machine, from_ms(begin), from_ms(end))
        rows = []
        for alert in alerts_of(_assessment_of(stored), RULE):
            episode = alert.episode
            closed = episode.end_ms
            if closed is None and segment.end_ms is not None:
                closed = segment.end_ms  # the repair or service answered it
            peak = episode.peak_index
            rows.append(
                (ref.site, ref.line, ref.machine, from_ms(episode.start_ms),
                 None if closed is None else from_ms(closed), alert.severity, alert.min_health,
                 from_ms(int(stored.ts_ms[peak])), episode.peak_score,
                 [jsonable({"feature": r.feature, "z": r.z, "change": r.change, "text": r.text})
                  for r in alert.reasons],
                 int(stored.model_id[peak]))
            )  # fmt: skip
        self._count(
            "maintenance_alerts", upsert(self.conn, "maintenance_alerts", self.run_id, rows)
        )
        gone = delete_alerts(self.conn, ref.site, ref.machine, from_ms(begin), from_ms(end),
                             [row[3] for row in rows])  # fmt: skip
        self._count("maintenance_alerts_deleted", gone)

    # ----------------------------------------------------- hours to failure

    def _load_rul(self) -> tuple[StoredModel, HoursToFailure] | None:
        """The fleet's RUL model for this run; the report says which, or why none."""
        try:
            found = load_active_rul(self.conn)
        except ModelIntegrityError as exc:
            log.warning("%s: hours to failure skipped: %s", self.site, exc)
            self.report.rul = f"RUL skipped: {exc}"
            found = None
        else:
            self.report.rul = NO_RUL_MODEL if found is None else f"RUL model {found[0].model_id}"
        self.say(f"{self.site}: {self.report.rul}")
        return found

    def _hours_to_failure(self, machine: _Machine, segment: _Segment) -> str:
        """Store the RUL of the segment's windows in the run; describe the latest one."""
        if self._rul is None:
            return ""
        stored, model = self._rul
        ref = machine.ref
        s0 = segment.start_ms
        hi = self.last_ms if segment.end_ms is None else min(segment.end_ms, self.last_ms)
        lo = max(s0, self.first_ms)
        if hi <= lo:
            return ""
        health = load_health(self.conn, ref.site, ref.machine, from_ms(s0), from_ms(hi))
        delete_rul(self.conn, ref.site, ref.machine, from_ms(s0), from_ms(hi), from_ms(lo))
        # The whole life since the reset: an estimate looks back at its windows.
        ends, x = health_rows(_assessment_of(health))
        if not ends.size or ends[-1] <= lo:
            return ""
        low, mid, high = model.predict_interval(Life(ends, x, None))
        capped = model.capped(mid)
        health_model = health.model_id[np.searchsorted(health.ts_ms, ends)]
        rows = [
            (ref.site, ref.line, ref.machine, from_ms(int(ends[i])), float(mid[i]),
             float(low[i]), float(high[i]), bool(capped[i]), stored.model_id,
             int(health_model[i]))
            for i in np.flatnonzero(ends > lo)
        ]  # fmt: skip
        self._count("rul_estimates", upsert(self.conn, "rul_estimates", self.run_id, rows))
        if capped[-1]:
            return f"hours to failure: more than {CAP_H:.0f} h"
        return f"hours to failure: {mid[-1]:.0f} h ({low[-1]:.0f}–{high[-1]:.0f} h)"


def _assessment_of(stored: HealthRows) -> Assessment:
    """Stored health rows in the shape the monitor gives them (without levels)."""
    return Assessment(
        Windows(stored.ts_ms, stored.samples, stored.load, {}, {}),
        stored.z, stored.change, stored.score, stored.health,
    )  # fmt: skip


def _repairs(faults: list[tuple[datetime, datetime]]) -> list[LogEntry]:
    """The fault spells long enough to have ended in a repair, as log entries."""
    entries = []
    for start, end in faults:
        if to_ms(end) - to_ms(start) >= MIN_REPAIR_MS:
            hours = (end - start).total_seconds() / 3600
            note = f"in fault from {start.isoformat()} for {hours:.1f} h"
            entries.append(LogEntry(end, "repair", note, "inferred"))
    return entries


def _valid_from_ms(model: StoredModel) -> int:
    assert model.valid_from is not None
    return to_ms(model.valid_from)


def _alert(row: tuple[Any, ...]) -> AlertRecord:
    (alert_id, site, line, machine, opened_at, closed_at, severity, min_health, peak_at,
     peak_score, reasons, model_id, run_id, acked_at, acked_by, comment) = row  # fmt: skip
    return AlertRecord(
        int(alert_id), str(site), str(line), str(machine), opened_at, closed_at, str(severity),
        float(min_health), peak_at, float(peak_score), list(reasons), int(model_id), int(run_id),
        acked_at, acked_by, comment,
    )  # fmt: skip


def get_alert(conn: Conn, alert_id: int) -> AlertRecord:
    """One maintenance alert; raise AlertNotFoundError if there is none."""
    row = alert_row(conn, alert_id)
    if row is None:
        raise AlertNotFoundError(f"no maintenance alert {alert_id}")
    return _alert(row)


def acknowledge_alert(conn: Conn, alert_id: int, by: str, comment: str = "") -> AlertRecord:
    """Record that ``by`` has seen an alert; the first acknowledgement is the one kept.

    Raises:
        AlertNotFoundError: no alert has this id.
        AlertAcknowledgedError: the alert was acknowledged before (by whom and when is in
            the message); acknowledge it once.
    """
    if not by.strip():
        raise ValueError("say who acknowledges the alert")
    row = acknowledge(conn, alert_id, by, comment)
    if row is not None:
        return _alert(row)
    existing = get_alert(conn, alert_id)
    when = existing.acknowledged_at.isoformat() if existing.acknowledged_at else "?"
    raise AlertAcknowledgedError(
        f"alert {alert_id} was acknowledged by {existing.acknowledged_by} at {when}"
    )


def run_maintenance(
    conn: Conn,
    site: str,
    start: datetime,
    end: datetime,
    run_id: int,
    progress: Progress | None = None,
) -> MaintenanceReport:
    """Run predictive maintenance for ``site`` over [start, end) as part of run ``run_id``."""
    return MaintenanceJob(conn, site, start, end, run_id, progress).run()

"""The registry of fitted maintenance models: every model a row, its bytes checked before use.

A fitted :class:`~analytics.health.HealthModel` (kind ``health``, one machine's) or
:class:`~analytics.rul_hours.HoursToFailure` (kind ``rul``, the fleet's: site, line and
machine ``*``) is stored as a joblib dump with the SHA-256 of its bytes; loading
recomputes the digest and refuses to unpickle bytes that do not match (unpickling runs
code, so a changed artifact is never trusted). Models are never deleted or overwritten:
a model is made *active* with the reason it was fitted, *retired* (with when and why)
when a retrained model, a reset or a newer training replaces it, and a refused candidate
is kept as *rejected* with the reason it was refused. At most one health model per
machine, and one RUL model, is active; promoting a model retires the previous one in
the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar

import joblib
from psycopg.types.json import Jsonb

from analytics.health import HealthModel
from analytics.rul_hours import COLUMNS, HoursToFailure
from analytics.store import Conn, jsonable
from tonle.errors import StoreError

MODEL_KIND: Final = "health"
RUL_KIND: Final = "rul"
FLEET: Final = "*"  # site, line and machine of a model that serves every machine

_COLUMNS: Final = (
    "model_id, site, line, machine, kind, model_version, status, reason, segment_start,"
    " trained_from, trained_to, valid_from, retired_at, retire_reason, features, metrics,"
    " sha256, run_id, created_at"
)
_INSERT: Final = """
INSERT INTO maintenance_models (site, line, machine, kind, model_version, status, reason,
    segment_start, trained_from, trained_to, valid_from, features, metrics, artifact, sha256,
    run_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING model_id
"""
# A model retired before it ever assessed (a reset inside its learning period) keeps an
# empty validity: retired_at never precedes valid_from.
_RETIRE: Final = """
UPDATE maintenance_models
SET status = 'retired', retired_at = greatest(%s, valid_from), retire_reason = %s
WHERE site = %s AND machine = %s AND kind = %s AND status = 'active' AND segment_start < %s
RETURNING model_id
"""

Estimator = TypeVar("Estimator", HealthModel, HoursToFailure)


class ModelIntegrityError(StoreError):
    """A stored model's bytes do not match their checksum, so they are not unpickled."""


@dataclass(frozen=True, slots=True)
class MachineRef:
    """A machine of a site."""

    site: str
    line: str
    machine: str


@dataclass(frozen=True, slots=True)
class Fit:
    """What is recorded with a fitted model: its history, training period and why it exists."""

    segment_start: datetime
    trained_from: datetime
    trained_to: datetime
    reason: str
    model_version: str
    metrics: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredModel:
    """A row of ``maintenance_models`` without its artifact."""

    model_id: int
    site: str
    line: str
    machine: str
    kind: str
    model_version: str
    status: str
    reason: str
    segment_start: datetime
    trained_from: datetime
    trained_to: datetime
    valid_from: datetime | None
    retired_at: datetime | None
    retire_reason: str | None
    features: list[str]
    metrics: dict[str, Any]
    sha256: str | None
    run_id: int
    created_at: datetime


def dump_model(model: HealthModel | HoursToFailure) -> tuple[bytes, str]:
    """A fitted model as joblib bytes and their SHA-256 (hex)."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def restore_model(artifact: bytes, sha256: str, label: str = "model") -> HealthModel:
    """Unpickle a health model's bytes after checking their SHA-256.

    Raises:
        ModelIntegrityError: the digest does not match, or the bytes are not a HealthModel.
    """
    return _restore(artifact, sha256, label, HealthModel)


# What to do about an artifact that fails its checksum, by the class it should hold.
_REMEDY: Final = {
    HealthModel: "refit the machine by logging a maintenance for it, or restore the artifact",
    HoursToFailure: "train a new one with `tonle analytics train-rul`, or restore the artifact",
}


def _restore(artifact: bytes, sha256: str, label: str, expected: type[Estimator]) -> Estimator:
    digest = hashlib.sha256(artifact).hexdigest()
    if not hmac.compare_digest(digest, sha256):
        raise ModelIntegrityError(
            f"{label}: stored artifact has SHA-256 {digest[:12]}…, expected {sha256[:12]}…; "
            f"refusing to load it (the row was changed outside Tonle; {_REMEDY[expected]})"
        )
    # The digest matches what Tonle stored, so these are bytes Tonle itself wrote.
    model = joblib.load(io.BytesIO(artifact))
    if not isinstance(model, expected):
        raise ModelIntegrityError(f"{label}: artifact holds a {type(model).__name__}")
    return model


def _stored(row: tuple[Any, ...]) -> StoredModel:
    (model_id, site, line, machine, kind, version, status, reason, segment_start, trained_from,
     trained_to, valid_from, retired_at, retire_reason, features, metrics, sha256, run_id,
     created_at) = row  # fmt: skip
    return StoredModel(
        int(model_id), str(site), str(line), str(machine), str(kind), str(version), str(status),
        str(reason), segment_start, trained_from, trained_to, valid_from, retired_at,
        retire_reason, list(features or []), dict(metrics or {}), sha256, int(run_id), created_at,
    )  # fmt: skip


def list_models(conn: Conn, site: str, machine: str, kind: str = MODEL_KIND) -> list[StoredModel]:
    """Every model of a machine, active, retired or rejected, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM maintenance_models WHERE site = %s AND machine = %s"
        " AND kind = %s ORDER BY trained_to, model_id",
        (site, machine, kind),
    ).fetchall()
    return [_stored(row) for row in rows]


def get_model(conn: Conn, model_id: int) -> StoredModel:
    """One model's row; raise StoreError if there is none."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM maintenance_models WHERE model_id = %s", (model_id,)
    ).fetchone()
    if row is None:
        raise StoreError(f"no maintenance model {model_id}")
    return _stored(row)


def _load(conn: Conn, model_id: int, expected: type[Estimator]) -> Estimator:
    row = conn.execute(
        "SELECT artifact, sha256, site, machine FROM maintenance_models WHERE model_id = %s",
        (model_id,),
    ).fetchone()
    if row is None:
        raise StoreError(f"no maintenance model {model_id}")
    artifact, sha256, site, machine = row
    if artifact is None:
        raise StoreError(f"maintenance model {model_id} was never fitted (a failed refit)")
    label = f"model {model_id} of {site}/{machine}"
    return _restore(bytes(artifact), str(sha256), label, expected)


def load_model(conn: Conn, model_id: int) -> HealthModel:
    """The fitted model of a row, checked against its SHA-256 (see :func:`restore_model`)."""
    return _load(conn, model_id, HealthModel)


def active_model(conn: Conn, site: str, machine: str, kind: str = MODEL_KIND) -> StoredModel | None:
    """The model assessing a machine now, if any."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM maintenance_models"
        " WHERE site = %s AND machine = %s AND kind = %s AND status = 'active'",
        (site, machine, kind),
    ).fetchone()
    return None if row is None else _stored(row)


def load_active(conn: Conn, site: str, machine: str) -> tuple[StoredModel, HealthModel] | None:
    """The active model of a machine with its fitted estimator, or None if it has none."""
    stored = active_model(conn, site, machine)
    if stored is None:
        return None
    return stored, load_model(conn, stored.model_id)


def _insert(
    conn: Conn,
    ref: MachineRef,
    model: HealthModel | None,
    fit: Fit,
    status: str,
    valid_from: datetime | None,
    run_id: int,
) -> int:
    features = list(model.features_) if model is not None else []
    return _insert_row(conn, ref, MODEL_KIND, model, features, fit, status, valid_from, run_id)


def _insert_row(
    conn: Conn,
    ref: MachineRef,
    kind: str,
    model: HealthModel | HoursToFailure | None,
    features: list[str],
    fit: Fit,
    status: str,
    valid_from: datetime | None,
    run_id: int,
) -> int:
    artifact, sha256 = dump_model(model) if model is not None else (None, None)
    row = conn.execute(
        _INSERT,
        (ref.site, ref.line, ref.machine, kind, fit.model_version, status, fit.reason,
         fit.segment_start, fit.trained_from, fit.trained_to, valid_from, features,
         Jsonb(jsonable(fit.metrics)), artifact, sha256, run_id),
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


def retire_active(
    conn: Conn, site: str, machine: str, at: datetime, reason: str, *, before: datetime
) -> int | None:
    """Retire a machine's active model at ``at`` if its history began before ``before``.

    Returns the retired model's id, or None if no such model was active.
    """
    row = conn.execute(_RETIRE, (at, reason, site, machine, MODEL_KIND, before)).fetchone()
    return None if row is None else int(row[0])


def promote(
    conn: Conn,
    ref: MachineRef,
    model: HealthModel,
    fit: Fit,
    *,
    valid_from: datetime,
    retire_reason: str,
    run_id: int,
) -> int:
    """Make ``model`` the machine's active model from ``valid_from``; return its id.

    The model active until then is retired at ``valid_from`` with ``retire_reason``, in
    the same transaction.
    """
    with conn.transaction():
        conn.execute(
            _RETIRE,
            (valid_from, retire_reason, ref.site, ref.machine, MODEL_KIND, "infinity"),
        )
        return _insert(conn, ref, model, fit, "active", valid_from, run_id)


def record_rejected(
    conn: Conn, ref: MachineRef, model: HealthModel | None, fit: Fit, *, run_id: int
) -> int:
    """Keep a candidate that did not replace the active model (None: it could not be fitted)."""
    return _insert(conn, ref, model, fit, "rejected", None, run_id)


# ---------------------------------------------------------------- hours to failure

RUL_REF: Final = MachineRef(FLEET, FLEET, FLEET)


@dataclass(frozen=True, slots=True)
class RulPromotion:
    """A RUL model made active, and the one it replaced (with why), if any."""

    model_id: int
    retired_id: int | None
    retire_reason: str | None


def promote_rul(
    conn: Conn, model: HoursToFailure, fit: Fit, *, valid_from: datetime, run_id: int
) -> RulPromotion:
    """Make ``model`` the fleet's RUL model from ``valid_from``.

    The RUL model active until then is retired at ``valid_from``, in the same
    transaction, with a reason naming its successor and why that one was trained.
    """
    with conn.transaction():
        # The one-active index wants the old model retired before the new row exists; its
        # reason names the new model once that has an id.
        retired = conn.execute(
            _RETIRE,
            (valid_from, "replaced", FLEET, FLEET, RUL_KIND, "infinity"),
        ).fetchone()
        model_id = _insert_row(
            conn, RUL_REF, RUL_KIND, model, list(COLUMNS), fit, "active", valid_from, run_id
        )
        if retired is None:
            return RulPromotion(model_id, None, None)
        reason = f"replaced by RUL model {model_id}: {fit.reason}"
        conn.execute(
            "UPDATE maintenance_models SET retire_reason = %s WHERE model_id = %s",
            (reason, retired[0]),
        )
        return RulPromotion(model_id, int(retired[0]), reason)


def active_rul(conn: Conn) -> StoredModel | None:
    """The fleet's RUL model in use, if one was trained."""
    return active_model(conn, FLEET, FLEET, RUL_KIND)


def load_rul(conn: Conn, model_id: int) -> HoursToFailure:
    """The fitted RUL model of a row, checked against its SHA-256."""
    return _load(conn, model_id, HoursToFailure)


def load_active_rul(conn: Conn) -> tuple[StoredModel, HoursToFailure] | None:
    """The fleet's RUL model in use with its fitted estimator, or None if there is none.

    Raises:
        ModelIntegrityError: its stored bytes do not match their checksum.
    """
    stored = active_rul(conn)
    if stored is None:
        return None
    return stored, load_rul(conn, stored.model_id)

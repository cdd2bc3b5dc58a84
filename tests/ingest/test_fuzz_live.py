"""`tonle ingest` fed a mixed stream of valid traffic and garbage, on a broker of its own.

The garbage: random bytes, messages over 1 MB, JSON nested 100,000 deep, payloads with
wrong types, values and timestamps, text PostgreSQL cannot store, and wrong topics. The
ingester must keep running, store every valid reading exactly, and put every garbage
message that reached it into ``dead_letters`` once, with its bytes and a reason.
"""

from __future__ import annotations

import json
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from api.broker_files import edge_username, mosquitto_hash
from api.provisioning import broker_files_from_database
from ingest import service
from ingest.store import Store
from tests.faults.processes import IngestProcess
from tests.mqtt_helpers import make_settings, publish_all, running_ingester, wait_until
from tonle.contract import MAX_PAYLOAD_BYTES, format_timestamp, telemetry_filter
from tonle.local_services import LocalBroker
from tonle.settings import parse_mqtt_url

pytestmark = [pytest.mark.db, pytest.mark.mqtt]

SEED = 20261128
VALID_MESSAGES = 150
PER_MESSAGE = 8
MACHINES = ("m1", "m2", "m3")
METRICS = ("active_power", "energy_total", "current_l1", "temperature")
Message = tuple[str, bytes]
Reading = tuple[str, str, str, datetime, float]  # line, machine, metric, ts, value


def _doc(edge: object, seq: object, readings: object, **extra: object) -> dict[str, object]:
    return {"v": 1, "edge": edge, "seq": seq, "readings": readings, **extra}


def _valid_stream(
    site: str, start: datetime, rng: random.Random
) -> tuple[list[Message], set[Reading]]:
    """Valid messages and the exact readings they carry."""
    messages: list[Message] = []
    expected: set[Reading] = set()
    for seq in range(VALID_MESSAGES):
        machine = MACHINES[seq % len(MACHINES)]
        readings = []
        for i in range(PER_MESSAGE):
            ts = start + timedelta(seconds=seq * PER_MESSAGE + i)
            metric = METRICS[i % len(METRICS)]
            value = rng.uniform(-1e6, 1e6)
            readings.append({"ts": format_timestamp(ts), "metric": metric, "value": value})
            expected.add(("line-a", machine, metric, ts, value))
        messages.append(
            (
                f"tonle/v1/{site}/line-a/{machine}/telemetry",
                json.dumps(_doc("edge-v", seq, readings)).encode(),
            )
        )
    return messages, expected


def _garbage(site: str, start: datetime, rng: random.Random) -> tuple[list[Message], list[Message]]:
    """Garbage that reaches the ingester (its subscription matches), and garbage that cannot."""
    topic = f"tonle/v1/{site}/line-a/m1/telemetry"
    ts = format_timestamp(start)
    ok = {"ts": ts, "metric": "active_power", "value": 1.5}
    reaches: list[Message] = []
    # Random bytes, some of them empty.
    for _ in range(60):
        reaches.append((topic, rng.randbytes(rng.choice([0, 1, 7, 100, 4096]))))
    # Messages over 1 MB: random bytes, and a well-formed payload padded past the limit.
    reaches.append((topic, rng.randbytes(1_200_000)))
    reaches.append((topic, b"[" * 1_100_000))
    big = [dict(ok, ts=format_timestamp(start + timedelta(milliseconds=i))) for i in range(20_000)]
    padded = json.dumps(_doc("edge-g", 1, big)).encode()
    assert len(padded) > 1_000_000 > MAX_PAYLOAD_BYTES
    reaches.append((topic, padded))
    # Deep JSON, well below the size limit.
    reaches.append((topic, b"[" * 100_000))
    reaches.append((topic, b'{"a":' * 40_000 + b"1" + b"}" * 40_000))
    reaches.append((topic, b'{"v":1,"edge":"e","seq":0,"readings":[{"ts":' + b"[" * 50_000))
    # Payload-shaped, with something wrong in each.
    wrong: list[object] = [
        _doc("edge-g", 1, [dict(ok, value="12.5")]),
        _doc("edge-g", 1, [dict(ok, value=True)]),
        _doc("edge-g", 1, [dict(ok, value=None)]),
        _doc("edge-g", 1, [dict(ok, value=10**400)]),
        _doc("edge-g", 1, [dict(ok, ts="2026-11-28T03:00:00")]),
        _doc("edge-g", 1, [dict(ok, ts="0001-01-01T00:00:00+01:00")]),
        _doc("edge-g", 1, [dict(ok, ts="9999-12-31T23:59:59-01:00")]),
        _doc("edge-g", 1, [dict(ok, ts=10**30)]),
        _doc("edge-g", 1, [dict(ok, ts="2099-01-01T00:00:00Z")]),
        _doc("edge-g", 1, [dict(ok, ts="1999-12-31T23:59:59Z")]),
        _doc("edge-g", 1, [dict(ok, ts=True)]),
        _doc("edge-g", 1, [dict(ok, metric="Active Power")]),
        _doc("edge-g", 1, [dict(ok, metric="ünïcödé_metric")]),
        _doc("edge-g", 1, [dict(ok, metric="a" * 64)]),
        _doc("edge-g", 1, [dict(ok, unit="\x00")]),
        _doc("edge-g", 1, [dict(ok, unit="\ud800")]),
        _doc("edge-g", 1, [dict(ok, unit="W\n")]),
        _doc("edge-g", 1, [dict(ok, unit="x" * 17)]),
        _doc("edge-g", 1, [dict(ok, **{"\x00": 1})]),
        _doc("edge-g", 1, [dict(ok, **{"\udfff": 1})]),
        _doc("edge-g", 1, [ok], **{"\x00extra": "\ud800"}),
        _doc("edge-g", 1, [ok], site="another-site"),
        _doc("edge-g", 1, [ok], machine={"deep": [[[[1]]]]}),
        _doc("edge-g", -1, [ok]),
        _doc("edge-g", 2**63, [ok]),
        _doc("edge-g", 2**80, [ok]),
        _doc("edge-g", "3", [ok]),
        _doc("edge-g", 1.5, [ok]),
        _doc("Edge G", 1, [ok]),
        _doc("edge-g", 1, []),
        _doc("edge-g", 1, {"not": "a list"}),
        _doc("edge-g", 1, [ok] * 10_001),
        _doc("edge-g", 1, [ok], v=2),
        _doc("edge-g", 1, [ok], v=True),
        _doc("edge-g", 1, [ok], buffered="yes"),
        [ok],
        "a string",
        12,
        None,
    ]
    for document in wrong:
        reaches.append((topic, json.dumps(document).encode("utf-8", "surrogatepass")))
    reaches.append(
        (topic, json.dumps(_doc("edge-g", 1, [ok]), ensure_ascii=False).encode("utf-16"))
    )
    for constant in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        reaches.append(
            (
                topic,
                b'{"v":1,"edge":"e","seq":0,"readings":[{"ts":"%s","metric":"a","value":%s}]}'
                % (ts.encode(), constant),
            )
        )
    # Wrong topics the subscription still matches: bad ids, and junk on a status topic.
    valid_body = json.dumps(_doc("edge-g", 1, [ok])).encode()
    for line, machine in (
        ("Line-A", "m1"),
        ("_edge", "m1"),
        ("line-a", "m 1"),
        ("line-a", "-m1"),
        ("line-a", "m1" * 40),
    ):
        reaches.append((f"tonle/v1/{site}/{line}/{machine}/telemetry", valid_body))
    reaches.append((f"tonle/v1/{site.upper()}/line-a/m1/telemetry", valid_body))
    reaches.append((f"tonle/v1/{site}/_edge/edge-g/status", b"maybe"))
    reaches.append((f"tonle/v1/{site}/_edge/edge-g/status", rng.randbytes(300)))
    reaches.append((f"tonle/v1/{site}/_edge/Edge G/status", b"online"))
    # Topics outside the subscription: the broker never delivers them to the ingester.
    never = [
        (f"tonle/v1/{site}/line-a/m1/extra/telemetry", valid_body),
        (f"tonle/v1/{site}/line-a/telemetry", valid_body),
        (f"tonle/v2/{site}/line-a/m1/telemetry", valid_body),
        (f"tonle/v1/{site}/line-a/m1/readings", valid_body),
        (f"factory/{site}/m1", valid_body),
    ]
    return reaches, never


@pytest.fixture
def ingester(database_url: str, private_broker: LocalBroker) -> Iterator[IngestProcess]:
    proc = IngestProcess(
        database_url, private_broker.url, f"fuzz-{uuid.uuid4().hex[:6]}", f"g{uuid.uuid4().hex[:6]}"
    )
    yield proc
    proc.close()


def test_garbage_beside_valid_traffic_is_dead_lettered_and_valid_traffic_stored(
    database_url: str,
    private_broker: LocalBroker,
    ingester: IngestProcess,
    conn: psycopg.Connection[tuple[object, ...]],
    site_id: str,
) -> None:
    rng = random.Random(SEED)
    start = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    valid, expected = _valid_stream(site_id, start, rng)
    reaches, never = _garbage(site_id, start, rng)
    stream = valid + reaches + never
    rng.shuffle(stream)
    assert telemetry_filter() == "tonle/v1/+/+/+/telemetry"  # what decides "reaches" above

    def count(query: str, *params: object) -> int:
        row = conn.execute(query, params).fetchone()
        return int(str(row[0])) if row else -1

    readings_before = count("SELECT count(*) FROM readings")
    sites_before = count("SELECT count(*) FROM sites")
    letters_before = count("SELECT coalesce(max(id), 0) FROM dead_letters")
    ingester.start()
    for first in range(0, len(stream), 50):
        publish_all(private_broker.url, stream[first : first + 50])
    # A last valid message after all the garbage: the ingester still takes traffic.
    last_ts = start + timedelta(hours=1)
    last = {"ts": format_timestamp(last_ts), "metric": "active_power", "value": 42.0}
    publish_all(
        private_broker.url,
        [
            (
                f"tonle/v1/{site_id}/line-a/m9/telemetry",
                json.dumps(_doc("edge-v", 10**6, [last])).encode(),
            )
        ],
    )
    expected.add(("line-a", "m9", "active_power", last_ts, 42.0))

    try:
        wait_until(
            lambda: count("SELECT count(*) FROM readings") - readings_before >= len(expected),
            timeout_s=60,
        )
        wait_until(
            lambda: (
                count("SELECT count(*) FROM dead_letters WHERE id > %s", letters_before)
                >= len(reaches)
            ),
            timeout_s=60,
        )
    except AssertionError:
        raise AssertionError(
            f"the ingester stalled (running: {ingester.running}); its last lines:\n"
            + "".join(ingester.lines[-20:])
        ) from None
    assert ingester.running, "".join(ingester.lines[-20:])
    assert ingester.signal(signal.SIGTERM) == 0  # flushes, acknowledges, exits cleanly
    assert ingester.logged("Traceback") == 0, "".join(ingester.lines[-40:])

    stored = {
        (str(line), str(machine), str(metric), ts, value)
        for line, machine, metric, ts, value in conn.execute(
            "SELECT line, machine, metric, ts, value FROM telemetry WHERE site = %s", (site_id,)
        )
    }
    assert stored == expected
    # Nothing stored from garbage, and no site registered from a bad topic.
    assert count("SELECT count(*) FROM readings") - readings_before == len(expected)
    assert count("SELECT count(*) FROM sites") - sites_before == 1

    letters = conn.execute(
        "SELECT topic, payload, reason FROM dead_letters WHERE id > %s", (letters_before,)
    ).fetchall()
    assert Counter((str(t), bytes(p)) for t, p, _ in letters) == Counter(reaches)  # type: ignore[call-overload]
    assert all(str(reason).strip() for _, _, reason in letters)
    sent_never = {topic for topic, _ in never}
    assert not sent_never & {str(t) for t, _, _ in letters}


# ------------------------------------------------------- an edge publishing as another


def _publish_as(url: str, messages: list[Message]) -> None:
    """Publish at QoS 1 with the login in ``url`` and wait for every PUBACK."""
    broker = parse_mqtt_url(url)
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"test-login-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.username_pw_set(broker.username, broker.password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, body, qos=1) for topic, body in messages]
        for info in infos:
            info.wait_for_publish(timeout=10)
            assert info.is_published(), "the broker did not acknowledge a test message"
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def registry_broker(database_url: str, site_id: str) -> Iterator[tuple[LocalBroker, str, str]]:
    """Sites A and B with one provisioned edge each; a Mosquitto with their passwd and ACL.

    The ACL comes from the registry (see tests/api/test_provisioning.py and
    tests/test_compose.py for what it lets in and keeps out); the simulator login may
    write to both sites, as ``tonle broker acl --simulator-site`` allows.
    """
    site_a, site_b = f"{site_id}a", f"{site_id}b"
    with psycopg.connect(database_url, autocommit=True) as conn:
        for site, edge_id in ((site_a, "gw-a"), (site_b, "gw-b")):
            conn.execute("INSERT INTO sites (site) VALUES (%s)", (site,))
            conn.execute(
                "INSERT INTO edge_credentials (site, edge_id, username, password_hash) "
                "VALUES (%s, %s, %s, %s)",
                (site, edge_id, edge_username(site, edge_id), mosquitto_hash(f"pw-{edge_id}")),
            )
    files = broker_files_from_database(
        database_url,
        parse_mqtt_url("mqtt://ingest:ingest-pw@127.0.0.1"),
        parse_mqtt_url("mqtt://simulator:sim-pw@127.0.0.1"),
        [site_a, site_b],
    )
    broker = LocalBroker()
    (broker.workdir / "passwd").write_text(files.passwd)
    (broker.workdir / "acl").write_text(files.acl)
    broker.extra_config = [
        "allow_anonymous false",
        f"password_file {broker.workdir / 'passwd'}",
        f"acl_file {broker.workdir / 'acl'}",
    ]
    broker.start()
    yield broker, site_a, site_b
    broker.close()


def test_an_edge_publishing_for_another_site_is_dead_lettered(
    database_url: str,
    registry_broker: tuple[LocalBroker, str, str],
    conn: psycopg.Connection[tuple[object, ...]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, site_a, site_b = registry_broker
    port = broker.port
    edge_b = f"mqtt://{edge_username(site_b, 'gw-b')}:pw-gw-b@127.0.0.1:{port}"
    simulator = f"mqtt://simulator:sim-pw@127.0.0.1:{port}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def body(edge: str, seq: int) -> bytes:
        ts = format_timestamp(start + timedelta(seconds=seq))
        reading = {"ts": ts, "metric": "active_power", "value": 7.0}
        return json.dumps(_doc(edge, seq, [reading])).encode()

    def letters() -> list[tuple[str, str]]:
        rows = conn.execute(
            "SELECT topic, reason FROM dead_letters WHERE topic LIKE %s ORDER BY id",
            (f"tonle/v1/{site_b}/%",),
        ).fetchall()
        return [(str(topic), str(reason)) for topic, reason in rows]

    def stored(machine: str) -> int:
        row = conn.execute(
            "SELECT count(*) FROM telemetry WHERE site = %s AND machine = %s", (site_b, machine)
        ).fetchone()
        return int(str(row[0])) if row else -1

    loads: list[float] = []
    real_load = Store.load_edge_sites

    def counted_load(store: Store) -> None:
        loads.append(time.monotonic())
        real_load(store)

    monkeypatch.setattr(Store, "load_edge_sites", counted_load)
    # No re-check within the test at first, so every look-up below is served from the cache.
    monkeypatch.setattr(service, "EDGE_SITES_RECHECK_S", 3_600.0)
    settings = make_settings(database_url, f"mqtt://ingest:ingest-pw@127.0.0.1:{port}")
    with running_ingester(settings):
        own = [(f"tonle/v1/{site_b}/line-b/mine/telemetry", body("gw-b", seq)) for seq in range(20)]
        # gw-b's login may write B's topics (the ACL allows it) but says it is gw-a of site A.
        forged = (f"tonle/v1/{site_b}/line-b/forged/telemetry", body("gw-a", 1))
        # An edge that is not provisioned anywhere (a simulator's, a hand-made one) passes.
        unknown = (f"tonle/v1/{site_b}/line-b/unknown/telemetry", body("sim-1", 1))
        _publish_as(edge_b, [*own, forged, unknown])
        # The simulator login writes both sites, edge status included.
        _publish_as(
            simulator,
            [
                (f"tonle/v1/{site_b}/_edge/gw-a/status", b"online"),
                (f"tonle/v1/{site_a}/line-a/sim/telemetry", body("gw-a", 2)),
            ],
        )
        wait_until(lambda: len(letters()) == 2 and stored("mine") == 20 and stored("unknown") == 1)
        assert len(loads) == 1  # one load for 24 messages: the hot path reads the cache

        # An edge provisioned while the ingester runs is found on the next miss.
        monkeypatch.setattr(service, "EDGE_SITES_RECHECK_S", 0.0)
        conn.execute(
            "INSERT INTO edge_credentials (site, edge_id, username, password_hash) "
            "VALUES (%s, 'gw-late', %s, %s)",
            (site_a, edge_username(site_a, "gw-late"), mosquitto_hash("pw-late")),
        )
        _publish_as(edge_b, [(f"tonle/v1/{site_b}/line-b/late/telemetry", body("gw-late", 1))])
        wait_until(lambda: len(letters()) == 3)

    assert letters() == [
        (forged[0], f"edge gw-a is registered to site {site_a}, not {site_b}"),
        (
            f"tonle/v1/{site_b}/_edge/gw-a/status",
            f"edge gw-a is registered to site {site_a}, not {site_b}",
        ),
        (
            f"tonle/v1/{site_b}/line-b/late/telemetry",
            f"edge gw-late is registered to site {site_a}, not {site_b}",
        ),
    ]
    assert (stored("forged"), stored("late")) == (0, 0)
    # Nothing of the forged messages reached the registry: no machine, no edge status.
    machines = conn.execute(
        "SELECT m.machine FROM machines m JOIN lines l ON l.id = m.line_id "
        "JOIN sites s ON s.id = l.site_id WHERE s.site = %s ORDER BY 1",
        (site_b,),
    ).fetchall()
    assert [str(m) for (m,) in machines] == ["mine", "unknown"]
    row = conn.execute(
        "SELECT count(*) FROM edges WHERE site = %s AND edge_id = 'gw-a'", (site_b,)
    ).fetchone()
    assert row is not None and int(str(row[0])) == 0
    # gw-a's own message on its own site (through the simulator login) was stored.
    row = conn.execute(
        "SELECT count(*) FROM telemetry WHERE site = %s AND machine = 'sim'", (site_a,)
    ).fetchone()
    assert row is not None and int(str(row[0])) == 1

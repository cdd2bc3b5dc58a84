"""The edge agent against a real Mosquitto: exact delivery, status, outages, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from edge.agent import EdgeAgent, run_agent
from edge.config import EdgeConfig
from tests.edge.conftest import Collector, CountingSource, TickingSource, make_config, wait_for
from tonle.contract import Payload, status_topic, telemetry_filter
from tonle.errors import BrokerError
from tonle.local_services import LocalBroker

pytestmark = pytest.mark.mqtt

ROOT = Path(__file__).resolve().parents[2]
Collect = Callable[..., Collector]


def distinct_readings(payloads: list[Payload]) -> set[tuple[int, str, object]]:
    return {(p.seq, r.metric, r.ts) for p in payloads for r in p.readings}


def unique_by_seq(payloads: list[Payload]) -> list[Payload]:
    """Each seq once, in the order it first arrived (QoS 1 may deliver twice)."""
    seen: dict[int, Payload] = {}
    for payload in payloads:
        seen.setdefault(payload.seq, payload)
    return list(seen.values())


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_every_reading_arrives_once_with_contiguous_seqs(
    tmp_path: Path, mqtt_url: str, site_id: str, collector: Collect, protocol: str
) -> None:
    watch = collector(mqtt_url, [telemetry_filter(site_id), f"tonle/v1/{site_id}/_edge/+/status"])
    config = make_config(tmp_path, mqtt_url, site_id, broker={"protocol": protocol})
    agent = EdgeAgent(config, sources=[CountingSource(1000, machines=3)]).start()
    try:
        assert agent.wait_sources_done(10)
        assert agent.wait_drained(10)
    finally:
        stats = agent.stop()
    # 334 + 333 + 333 readings, 50 to a message: 7 messages per machine.
    assert (stats.readings_sampled, stats.acked_readings, stats.published) == (1000, 1000, 21)
    assert (stats.pending, stats.dropped_messages, stats.buffered_published) == (0, 0, 0)
    wait_for(lambda: len(watch.payloads()) == 21)
    payloads = watch.payloads()
    assert sorted(p.seq for p in payloads) == list(range(21))
    assert sum(len(p.readings) for p in payloads) == 1000
    readings = {(r.metric, r.ts, r.value) for p in payloads for r in p.readings}
    assert len(readings) == 1000
    assert not any(p.buffered for p in payloads)
    assert {p.edge for p in payloads} == {"edge-01"}
    topics = {m.topic for m in watch.messages() if "/telemetry" in m.topic}
    assert topics == {f"tonle/v1/{site_id}/line-1/m{i}/telemetry" for i in range(3)}
    status = [m.payload for m in watch.on_topic(status_topic(site_id, "edge-01"))]
    assert status == [b"online", b"offline"]
    # Both were retained: a newcomer sees the last one.
    late = collector(mqtt_url, [status_topic(site_id, "edge-01")])
    wait_for(lambda: late.messages())
    assert [(m.payload, m.retain) for m in late.messages()] == [(b"offline", True)]


def test_a_restarted_agent_continues_the_seq_and_replays_as_buffered(
    tmp_path: Path, mqtt_url: str, site_id: str, collector: Collect
) -> None:
    watch = collector(mqtt_url, [telemetry_filter(site_id)])
    config = make_config(tmp_path, mqtt_url, site_id, batch={"max_readings": 10})
    first = EdgeAgent(config, sources=[CountingSource(30, machines=1)]).start()
    assert first.wait_sources_done(10) and first.wait_drained(10)
    first.stop()
    second = EdgeAgent(config, sources=[CountingSource(20, machines=1)]).start()
    assert second.wait_sources_done(10) and second.wait_drained(10)
    second.stop()
    wait_for(lambda: len(watch.payloads()) == 5)
    assert [p.seq for p in watch.payloads()] == [0, 1, 2, 3, 4]


def test_the_last_will_says_offline_when_the_agent_dies(
    tmp_path: Path, mqtt_url: str, site_id: str, collector: Collect
) -> None:
    topic = status_topic(site_id, "edge-01")
    watch = collector(mqtt_url, [topic, telemetry_filter(site_id)])
    config_file = tmp_path / "edge.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "site": site_id,
                "edge_id": "edge-01",
                "broker": {"url": mqtt_url, "keepalive_s": 5},
                "batch": {"max_delay_s": 0.1},
                "spool": {"path": "edge.spool"},
                "sources": [{"type": "system", "interval_s": 0.2}],
            }
        )
    )
    code = (
        "import sys\nfrom edge.agent import run_agent\nfrom edge.config import load_config\n"
        "run_agent(load_config(sys.argv[1]))\n"
    )
    agent = subprocess.Popen(
        [sys.executable, "-c", code, str(config_file)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: [m.payload for m in watch.on_topic(topic)] == [b"online"])
        # The gateway's own health arrives on line `gateway`, machine = edge id.
        wait_for(lambda: watch.payloads())
        gateway = f"tonle/v1/{site_id}/gateway/edge-01/telemetry"
        assert {m.topic for m in watch.messages() if m.topic != topic} == {gateway}
        assert "load_1m" in {r.metric for p in watch.payloads() for r in p.readings}
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        wait_for(lambda: [m.payload for m in watch.on_topic(topic)] == [b"online", b"offline"])
    finally:
        agent.kill()
        agent.wait(10)
    late = collector(mqtt_url, [topic])
    wait_for(lambda: late.messages())
    assert [(m.payload, m.retain) for m in late.messages()] == [(b"offline", True)]


def test_readings_sampled_while_the_broker_is_down_arrive_in_order_as_buffered(
    tmp_path: Path, private_broker: LocalBroker, site_id: str, collector: Collect
) -> None:
    watch = collector(private_broker.url, [telemetry_filter(site_id)], persistent=True)
    config = make_config(tmp_path, private_broker.url, site_id, batch={"max_readings": 10})
    source = TickingSource(interval_s=0.02, per_tick=4)
    agent = EdgeAgent(config, sources=[source]).start()
    try:
        wait_for(lambda: len(watch.payloads()) >= 5)
        private_broker.stop()
        wait_for(lambda: not agent.stats.connected)
        sampled_at_stop = source.produced
        # The spool fills while the broker is away; what was in flight when it went
        # (a few messages) is paho's to resend, the rest will be replayed as buffered.
        wait_for(lambda: agent.stats.pending >= 20 + agent.stats.inflight)
        assert source.produced > sampled_at_stop, "real-time sampling carried on"
        private_broker.start()
        wait_for(lambda: agent.stats.connects == 2)
        wait_for(lambda: agent.stats.buffered_published >= 20)
    finally:
        stats = agent.stop()
    assert stats.pending == 0 and stats.dropped_readings == 0
    assert stats.readings_sampled == source.produced
    wait_for(lambda: len(distinct_readings(watch.payloads())) == stats.readings_sampled)
    payloads = unique_by_seq(watch.payloads())
    assert sorted(p.seq for p in payloads) == list(range(stats.published))
    assert sum(len(p.readings) for p in payloads) == stats.readings_sampled
    buffered = [p.seq for p in payloads if p.buffered]
    assert len(buffered) == stats.buffered_published >= 20
    assert buffered == sorted(buffered), "replayed in seq order"
    # Everything spooled during the outage came after what was sent before it.
    assert min(buffered) > min(p.seq for p in payloads if not p.buffered)


def test_a_backfill_source_pauses_at_the_high_water_mark(
    tmp_path: Path, mqtt_url: str, site_id: str, collector: Collect
) -> None:
    watch = collector(mqtt_url, [telemetry_filter(site_id)])
    config = make_config(
        tmp_path,
        mqtt_url,
        site_id,
        batch={"max_readings": 10},
        publish={"max_inflight": 2, "high_water_messages": 20},
    )
    agent = EdgeAgent(config, sources=[CountingSource(5000, machines=1)], queue_samples=50)
    peak = 0
    agent.start()
    try:
        while not agent.sources_done:
            peak = max(peak, agent.stats.pending)
            time.sleep(0.002)
        assert agent.wait_drained(20)
    finally:
        stats = agent.stop()
    # The gate closes above 20; then the queue and one batcher round (50 samples each,
    # 5 messages each) and the open batch can still reach the spool. Without the gate
    # all 500 messages would be waiting.
    assert 20 <= peak <= 21 + 5 + 5 + 1
    assert (stats.acked_readings, stats.dropped_readings) == (5000, 0)
    wait_for(lambda: len(distinct_readings(watch.payloads())) == 5000)


def test_bad_credentials_stop_the_agent_with_a_clear_error(tmp_path: Path, site_id: str) -> None:
    with LocalBroker(extra_config=["allow_anonymous false"]) as broker:
        url = broker.url.replace("mqtt://", "mqtt://edge:wrong@")
        config: EdgeConfig = make_config(tmp_path, url, site_id)
        stop = threading.Event()
        timer = threading.Timer(15, stop.set)  # a safety net; the refusal comes first
        timer.start()
        try:
            with pytest.raises(
                BrokerError, match=r"refused the edge \(Not authorized\); check broker\.username"
            ):
                run_agent(config, stop)
        finally:
            timer.cancel()
            timer.join()
        assert not stop.is_set(), "the agent gave up on its own, not on the timer"


def test_messages_no_subscriber_took_stay_in_the_spool_until_one_does(
    tmp_path: Path, private_broker: LocalBroker, site_id: str, collector: Collect
) -> None:
    # A broker of its own: the session broker keeps other tests' persistent sessions.
    mqtt_url = private_broker.url
    config = make_config(tmp_path, mqtt_url, site_id, publish={"unrouted_retry_max_s": 1})
    agent = EdgeAgent(config, sources=[CountingSource(200, machines=2)]).start()
    try:
        assert agent.wait_sources_done(10)
        # The broker acknowledges each message with "no matching subscribers":
        # nothing is deleted from the spool.
        wait_for(lambda: agent.stats.unrouted_messages >= 4)
        assert agent.stats.pending == 4
        assert agent.stats.acked == 0
        watch = collector(mqtt_url, [telemetry_filter(site_id)])
        assert agent.wait_drained(15)
    finally:
        stats = agent.stop()
    assert (stats.acked, stats.acked_readings, stats.pending) == (4, 200, 0)
    wait_for(lambda: len(unique_by_seq(watch.payloads())) == 4)
    resent = unique_by_seq(watch.payloads())
    assert sorted(p.seq for p in resent) == [0, 1, 2, 3]
    assert all(p.buffered for p in resent)

"""An edge gateway SIGKILLed (a power cut) while the broker is away and it spools."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.faults.processes import EdgeProcess
from tests.faults.streams import START, edge_health, key, stored, wait_stored
from tests.mqtt_helpers import make_settings, running_ingester, wait_until
from tonle.contract import parse_timestamp
from tonle.local_services import LocalBroker

pytestmark = [pytest.mark.faults, pytest.mark.db, pytest.mark.mqtt, pytest.mark.timeout(240)]

RATE_PER_S = 2_000.0
MAX_DELAY_S = 0.2  # the edge's batch flush interval
# A reading waits at most MAX_DELAY_S in its open batch, plus one batcher round (0.1 s)
# and the spool commit, before it is committed; allow half a second for both.
UNCOMMITTED_BOUND_S = MAX_DELAY_S + 0.5
SPOOLED_WHILE_AWAY = 6_000  # readings sampled after the broker went away, before the cut
AFTER_RESTART = 2_000


def _sampled(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()]


def _spool_contents(path: Path) -> tuple[set[int], int]:
    """The readings committed to the spool, by index, and its next_seq."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT readings_json FROM messages").fetchall()
        (next_seq,) = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
    db.close()
    indices = set()
    for (text,) in rows:
        for reading in json.loads(text):
            delta = parse_timestamp(reading["ts"]) - START
            indices.add(round(delta.total_seconds() * 1000))
    return indices, int(next_seq)


def test_edge_killed_while_spooling_keeps_every_committed_reading(
    database_url: str,
    private_broker: LocalBroker,
    edge_processes: list[EdgeProcess],
    site_id: str,
    tmp_path: Path,
) -> None:
    """Emitted is what the spool had committed at the cut plus what the broker had acked.

    The only readings allowed to be missing are those sampled but not yet committed to
    the spool at the instant of the kill: for each machine a tail of its readings, all
    sampled within UNCOMMITTED_BOUND_S of the cut. The restarted edge goes on from the
    next reading, and its spool's seq from where it was, so no message number is reused.
    """
    config = tmp_path / "edge.yaml"
    spool = tmp_path / "edge.spool"
    config.write_text(
        yaml.safe_dump(
            {
                "site": site_id,
                "edge_id": "edge-p",
                "broker": {
                    "url": private_broker.url,
                    "reconnect_min_s": 0.2,
                    "reconnect_max_s": 1.0,
                },
                "batch": {"max_readings": 50, "max_delay_s": MAX_DELAY_S},
                "spool": {"path": str(spool), "synchronous": "full"},
                "sources": [{"type": "system"}],  # replaced by the ramp
            }
        )
    )
    log = tmp_path / "sampled.log"
    edge = EdgeProcess(config, log)
    edge_processes.append(edge)
    with running_ingester(make_settings(database_url, private_broker.url)):
        edge.start(first=0, count=1_000_000, rate_per_s=RATE_PER_S)
        wait_stored(database_url, site_id, 2_000, timeout_s=30)
        private_broker.stop()
        edge.wait_for_line("lost the broker", timeout_s=10)
        at_stop = len(_sampled(log))
        wait_until(lambda: len(_sampled(log)) >= at_stop + SPOOLED_WHILE_AWAY, timeout_s=20)
        assert edge.signal(signal.SIGKILL) == -signal.SIGKILL

        sampled = _sampled(log)
        assert sampled == list(range(len(sampled))), "the sampled log is not a plain ramp"
        committed, next_seq = _spool_contents(spool)
        assert committed, "the spool should hold what was sampled while the broker was away"
        assert committed <= set(sampled)

        # Restart on the same spool, then bring the broker back.
        resume_at = len(sampled)
        edge.start(first=resume_at, count=AFTER_RESTART, rate_per_s=RATE_PER_S)
        private_broker.start()
        assert edge.wait_exit(timeout_s=60) == 0
        assert edge.logged("source done and delivered") == 1
        wait_stored(database_url, site_id, len(committed) + AFTER_RESTART, timeout_s=30)
        rows = stored(database_url, site_id)

    got = [i for _, i in rows]
    assert len(got) == len(set(got)), "a reading was stored twice"
    assert set(rows) == {key(i) for i in got}
    before = {i for i in got if i < resume_at}
    after = {i for i in got if i >= resume_at}
    assert after == set(range(resume_at, resume_at + AFTER_RESTART))
    assert committed <= before, f"{len(committed - before)} spooled readings never arrived"
    lost = set(sampled) - before
    assert not lost & committed
    # Per machine, what arrived is a prefix of what was sampled; the loss is its tail.
    by_machine: dict[int, list[int]] = defaultdict(list)
    for i in sampled:
        by_machine[i % 4].append(i)
    for machine, indices in by_machine.items():
        arrived = [i for i in indices if i in before]
        assert arrived == indices[: len(arrived)], f"m{machine}: a gap before its tail"
    # The tail is what the batcher held at the cut: at most one flush interval's worth.
    oldest_lost_s = (resume_at - min(lost)) / RATE_PER_S if lost else 0.0
    if lost:
        assert oldest_lost_s <= UNCOMMITTED_BOUND_S, (
            f"{len(lost)} readings lost, the oldest sampled {oldest_lost_s:.2f} s before the cut"
        )
    # The restarted edge numbered its messages on from the spool's next_seq: no gaps.
    messages, gaps, _ = edge_health(database_url, site_id, "edge-p")
    with psycopg.connect(database_url) as conn:
        first_seq, last_seq = conn.execute(
            "SELECT min(seq), max(seq) FROM edge_messages WHERE site = %s", (site_id,)
        ).fetchone() or (None, None)
    assert (gaps, first_seq, messages) == (0, 0, int(str(last_seq)) + 1)
    assert int(str(last_seq)) >= next_seq, "the restarted edge reused message numbers"
    print(
        f"sampled before the cut: {len(sampled)}, committed in the spool: {len(committed)}, "
        f"acknowledged before: {len(before - committed)}, lost uncommitted: {len(lost)}, "
        f"the oldest of them sampled {oldest_lost_s:.2f} s before the cut"
    )

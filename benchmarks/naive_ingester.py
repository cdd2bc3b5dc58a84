"""The naive reference ingester: what most home-grown MQTT-to-SQL bridges do.

One paho subscriber at QoS 1; for every message, one ``INSERT`` per reading on an
autocommit connection (so one commit per reading), then paho acknowledges the message
when the callback returns. No batching, no pipelining, no dead letters. It exists only
so that ``tonle bench ingest`` can say how Tonle's ingester compares with it, measured
the same way in the same run; nothing in Tonle runs it.

Run: ``python -m benchmarks.naive_ingester DATABASE_URL MQTT_URL SITE``. The
site's sensors must already be registered (the benchmark does that); it prints
``subscribed`` on stderr once the broker has accepted the subscription.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

INSERT = "INSERT INTO readings (ts, sensor_id, value) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
SENSORS = """
SELECT l.line, m.machine, s.metric, s.id FROM sensors s JOIN machines m ON m.id = s.machine_id
JOIN lines l ON l.id = m.line_id JOIN sites si ON si.id = l.site_id WHERE si.site = %s
"""


def main(database_url: str, mqtt_url: str, site: str) -> None:
    """Subscribe to ``site``'s telemetry and store it one reading at a time until SIGTERM."""
    db = psycopg.connect(database_url, autocommit=True)
    rows = db.execute(SENSORS, (site,)).fetchall()
    sensors = {(line, machine, metric): sid for line, machine, metric, sid in rows}

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        _, _, _, line, machine, _ = message.topic.split("/")
        for reading in json.loads(message.payload)["readings"]:
            sensor_id = sensors[(line, machine, reading["metric"])]
            db.execute(INSERT, (reading["ts"], sensor_id, reading["value"]))

    def on_subscribe(client: paho.Client, *args: Any) -> None:
        print("subscribed", file=sys.stderr, flush=True)

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"naive-{site}")
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.on_connect = lambda c, *args: c.subscribe(f"tonle/v1/{site}/+/+/telemetry", qos=1)
    broker = urlsplit(mqtt_url)
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    tls = broker.scheme == "mqtts"
    if tls:
        client.tls_set()
    client.connect(broker.hostname or "localhost", broker.port or (8883 if tls else 1883))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    db.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])

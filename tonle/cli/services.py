"""The services a command runs against: the configured ones, or private ones started here."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from tonle.local_services import EmbeddedPostgres, LocalBroker
from tonle.settings import Settings


@dataclass(frozen=True)
class Services:
    """Where the database and the broker are, and what the broker speaks."""

    database_url: str
    mqtt_url: str
    mqtt5: bool

    def settings(self, base: Settings) -> Settings:
        """``base`` pointed at these services (3.1.1 ingest where the broker lacks MQTT 5)."""
        ingest = base.ingest.model_copy(update={"protocol": "5" if self.mqtt5 else "3.1.1"})
        return base.model_copy(
            update={"database_url": self.database_url, "mqtt_url": self.mqtt_url, "ingest": ingest}
        )


@contextlib.contextmanager
def platform_services(
    workdir: Path, console: Console, prefer: str = "mosquitto"
) -> Iterator[Services]:
    """Use TONLE_DATABASE_URL / TONLE_MQTT_URL where set; otherwise start private services.

    ``prefer="amqtt"`` starts the pure-Python broker even where Mosquitto is installed.
    """
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("TONLE_DATABASE_URL")
        if not database_url:
            console.print(f"starting an embedded PostgreSQL in {workdir / 'pg'} …")
            pg = EmbeddedPostgres(workdir / "pg").start()
            stack.callback(pg.stop)
            database_url = pg.database_url("tonle")
        mqtt_url = os.environ.get("TONLE_MQTT_URL")
        mqtt5 = True
        if not mqtt_url:
            broker = LocalBroker(prefer=prefer).start()
            stack.callback(broker.close)
            mqtt_url, mqtt5 = broker.url, broker.mqtt5
            console.print(f"started a private {broker.kind} broker on {mqtt_url}")
        yield Services(database_url=database_url, mqtt_url=mqtt_url, mqtt5=mqtt5)

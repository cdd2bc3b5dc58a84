"""The ingester's MQTT client: the only ingest module that imports paho.

Callbacks only convert and enqueue: a delivered message becomes a frozen
:class:`~ingest.decode.Incoming` on a queue, tagged with the connection it arrived on.
Acknowledgements are manual and sent by the writer thread after its transaction has
committed; an acknowledgement for a message from an earlier connection is not sent
(the broker redelivers that message on the new one, and the unique key absorbs it).
"""

from __future__ import annotations

import logging
import queue
import ssl
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.decode import Incoming
from tonle.contract import status_filter, telemetry_filter
from tonle.errors import BrokerError
from tonle.settings import BrokerAddress, IngestSettings

log = logging.getLogger(__name__)

_BAD_CREDENTIALS = {"Bad user name or password", "Not authorized"}


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message and the connection generation it arrived on (needed to ack it)."""

    message: Incoming
    generation: int


class IngestClient:
    """A persistent-session MQTT subscriber with manual, after-commit acknowledgement."""

    def __init__(self, broker: BrokerAddress, settings: IngestSettings) -> None:
        self._broker = broker
        self._settings = settings
        self.mqtt5 = settings.protocol == "5"
        self.deliveries: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.fatal: BrokerError | None = None
        self._generation = 0
        self._connect_error = ""  # the last failed attempt's error, logged once
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self.mqtt5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self.mqtt5 else False,
            manual_ack=True,
        )
        if broker.username:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            try:
                self._client.tls_set(ca_certs=str(broker.ca_file) if broker.ca_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise BrokerError(f"cannot load the TLS CA file {broker.ca_file}: {exc}") from exc
        self._client.reconnect_delay_set(min_delay=1, max_delay=int(settings.backoff_max_s))
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    @property
    def telemetry_subscription(self) -> str:
        """The telemetry filter: shared over MQTT 5, plain over 3.1.1 (one ingester)."""
        if self.mqtt5:
            return f"$share/{self._settings.group}/{telemetry_filter()}"
        return telemetry_filter()

    def start(self) -> None:
        """Connect in the background; the paho network thread keeps reconnecting."""
        properties = None
        if self.mqtt5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._settings.session_expiry_s
            # Ack-after-commit keeps many messages in flight; announce room for them.
            properties.ReceiveMaximum = self._settings.receive_maximum
        try:
            self._client.connect_async(
                self._broker.host,
                self._broker.port,
                keepalive=30,
                clean_start=False if self.mqtt5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                properties=properties,
            )
        except (OSError, ValueError) as exc:
            raise BrokerError(f"cannot connect to {self._broker}: {exc}") from exc
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly (the broker keeps the session) and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, delivery: Delivery) -> bool:
        """Acknowledge a delivery if it came on the current connection; True if sent."""
        if delivery.message.qos == 0:
            return True
        if delivery.generation != self._generation or not self.connected.is_set():
            return False
        self._client.ack(delivery.message.mid, delivery.message.qos)
        return True

    # ---------------------------------------------------------------- callbacks

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker %s refused the connection: %s", self._broker, reason_code)
            if str(reason_code) in _BAD_CREDENTIALS:
                self.fatal = BrokerError(
                    f"broker {self._broker} refused our credentials ({reason_code}); "
                    "check TONLE_MQTT_URL"
                )
                client.disconnect()
            return
        self._generation += 1
        self._connect_error = ""
        log.info(
            "connected to %s (session %s)",
            self._broker,
            "resumed" if flags.session_present else "new",
        )
        # Resubscribe on every connect: cheap, and right even if the session was lost.
        options = SubscribeOptions(qos=1)
        client.subscribe(
            [(self.telemetry_subscription, options), (status_filter(), options)]
            if self.mqtt5
            else [(self.telemetry_subscription, 1), (status_filter(), 1)]
        )
        self.connected.set()

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        # paho calls this inside its `except OSError:`, so the error is at hand. A broker
        # whose certificate we do not trust stays untrusted however often we retry.
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLCertVerificationError):
            self.fatal = BrokerError(
                f"the TLS certificate of the broker {self._broker} is not trusted "
                f"({error.verify_message}); set TONLE_MQTT_CA_FILE to the CA that signed it"
            )
            log.error("%s", self.fatal)
            client.disconnect()
        elif error is not None and str(error) != self._connect_error:
            log.warning("cannot reach the broker %s (%s); retrying", self._broker, error)
        self._connect_error = str(error)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self.fatal = BrokerError(f"broker {self._broker} refused our subscriptions: {refused}")
            return
        log.info("subscribed to %s", self.telemetry_subscription)
        self.subscribed.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if reason_code.is_failure:
            log.warning("lost the broker %s (%s); reconnecting", self._broker, reason_code)

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        self.deliveries.put(
            Delivery(
                Incoming(
                    topic=message.topic,
                    payload=bytes(message.payload),
                    mid=message.mid,
                    qos=message.qos,
                    retain=bool(message.retain),
                    received_at=datetime.now(UTC),
                ),
                self._generation,
            )
        )

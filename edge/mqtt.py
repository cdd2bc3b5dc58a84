"""The edge's one MQTT connection; the only module that imports paho.

paho's callbacks run on its network thread and do no work there: each turns what
happened into a frozen :data:`LinkEvent` and puts it on the queue the publisher reads
(and, on a lost connection, sets the next jittered reconnect delay). Everything else
(publishing the birth message, replaying, giving up on bad credentials) happens on the
publisher's thread.

The status topic carries ``online`` (retained, published on every connect) and
``offline`` (retained, the last will, and published on a clean stop).
"""

from __future__ import annotations

import logging
import math
import queue
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.backoff import Backoff
from edge.config import EdgeConfig
from tonle.contract import STATUS_OFFLINE, STATUS_ONLINE, status_topic
from tonle.errors import BrokerError, ConfigError
from tonle.settings import BrokerAddress

log = logging.getLogger(__name__)

# PUBACK reason 0x10: the broker took the message but nobody subscribes to it (no
# ingester, or a broker restarted without restoring a shared subscription).
NO_MATCHING_SUBSCRIBERS = 0x10
# CONNACK reasons that no amount of retrying will fix: the configuration must change.
# 0x84 unsupported protocol version, 0x85 client id not valid, 0x86 bad user name or
# password, 0x87 not authorized, 0x8A banned, 0x8C bad authentication method.
FATAL_CONNACK_CODES = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C})
# Room for the status messages on top of the publisher's window.
_STATUS_HEADROOM = 8


@dataclass(frozen=True, slots=True)
class Connected:
    """The broker accepted the connection."""

    receive_maximum: int | None
    session_present: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """The broker answered the CONNECT with a failure; ``fatal`` means stop retrying."""

    reason: str
    fatal: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection is gone; paho is reconnecting unless we stopped it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A connection attempt failed before the broker answered (refused, DNS, timeout)."""


@dataclass(frozen=True, slots=True)
class Acked:
    """The broker acknowledged the QoS 1 message with this id; ``ok`` false if it refused it."""

    mid: int
    ok: bool
    reason: str
    unrouted: bool = False  # MQTT 5 reason 0x10: accepted, but no subscriber took it


LinkEvent = Connected | Refused | Disconnected | Unreachable | Acked


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """Everything the connection needs, taken from the edge configuration."""

    address: BrokerAddress
    client_id: str
    status_topic: str
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: int = 30
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    max_inflight: int = 1000

    @classmethod
    def from_config(cls, config: EdgeConfig) -> LinkOptions:
        """The options for an edge configuration."""
        broker = config.broker
        tls = broker.tls
        return cls(
            address=broker.address(),
            client_id=config.client_id(),
            status_topic=status_topic(config.site, config.edge_id),
            protocol=broker.protocol,
            keepalive_s=broker.keepalive_s,
            ca_file=tls.ca_file if tls else None,
            cert_file=tls.cert_file if tls else None,
            key_file=tls.key_file if tls else None,
            tls_insecure=tls.insecure if tls else False,
            reconnect_min_s=broker.reconnect_min_s,
            reconnect_max_s=broker.reconnect_max_s,
            max_inflight=config.publish.max_inflight,
        )


class MqttLink:
    """A paho client with the edge's will, birth message, TLS and reconnect policy."""

    def __init__(self, options: LinkOptions, events: queue.SimpleQueue[Any]) -> None:
        self.options = options
        self._events = events
        self._backoff = Backoff(options.reconnect_min_s, options.reconnect_max_s)
        protocol = paho.MQTTv5 if options.protocol == "5" else paho.MQTTv311
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=options.client_id, protocol=protocol
        )
        address = options.address
        if address.username is not None:
            client.username_pw_set(address.username, address.password)
        if address.tls:
            try:
                client.tls_set(
                    ca_certs=str(options.ca_file) if options.ca_file else None,
                    certfile=str(options.cert_file) if options.cert_file else None,
                    keyfile=str(options.key_file) if options.key_file else None,
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"broker.tls: cannot load the TLS files ({exc})") from None
            if options.tls_insecure:
                client.tls_insecure_set(True)
        client.will_set(options.status_topic, STATUS_OFFLINE, qos=1, retain=True)
        client.max_inflight_messages_set(options.max_inflight + _STATUS_HEADROOM)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        self._started = False
        self._tls_error = ""

    # -------------------------------------------------------------- called by us

    def start(self) -> None:
        """Connect in the background and keep reconnecting (paho's network thread)."""
        address = self.options.address
        log.info(
            "connecting to %s as %s (MQTT %s)",
            address,
            self.options.client_id,
            self.options.protocol,
        )
        self._client.connect_async(address.host, address.port, self.options.keepalive_s)
        self._client.loop_start()
        self._started = True

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int | None:
        """Publish at QoS 1 and return the message id, or None if paho's queue is full.

        While disconnected paho keeps the message and sends it on reconnect, so it
        counts as in flight like any other.
        """
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return int(info.mid)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return None
        raise BrokerError(f"publishing on {topic} failed: {paho.error_string(info.rc)}")

    def announce_online(self) -> None:
        """Publish the retained ``online`` status (after every connect)."""
        self.publish(self.options.status_topic, STATUS_ONLINE.encode(), retain=True)

    def close(self, offline_timeout_s: float = 2.0) -> None:
        """Say ``offline`` (if connected), disconnect cleanly and stop the network thread."""
        if not self._started:
            return
        self._started = False
        client = self._client
        if client.is_connected() and offline_timeout_s > 0:
            info = client.publish(
                self.options.status_topic, STATUS_OFFLINE.encode(), qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout=offline_timeout_s)
            except (RuntimeError, ValueError) as exc:
                log.warning("could not publish the offline status: %s", exc)
        client.disconnect()
        client.loop_stop()
        log.info("disconnected from %s", self.options.address)

    # ------------------------------------------------- paho callbacks (its thread)

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            fatal = reason_code.value in FATAL_CONNACK_CODES
            self._events.put(Refused(reason=str(reason_code), fatal=fatal))
            return
        self._backoff.reset()
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        self._events.put(
            Connected(
                receive_maximum=int(receive_maximum) if receive_maximum is not None else None,
                session_present=bool(flags.session_present),
            )
        )

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        self._set_reconnect_delay(self._backoff.next_delay_s())
        # paho calls this inside its `except OSError:`. An untrusted broker certificate is
        # said plainly (once per reason); the edge keeps retrying, as the broker may be fixed.
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLCertVerificationError) and str(error) != self._tls_error:
            self._tls_error = str(error)
            log.error(
                "the TLS certificate of the broker at %s is not trusted (%s); set "
                "broker.tls.ca_file to the CA that signed it",
                self.options.address,
                error.verify_message,
            )
        self._events.put(Unreachable())

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._set_reconnect_delay(self._backoff.next_delay_s())
        self._events.put(Disconnected(reason=str(reason_code)))

    def _on_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._events.put(
            Acked(
                mid=mid,
                ok=not reason_code.is_failure,
                reason=str(reason_code),
                unrouted=reason_code.value == NO_MATCHING_SUBSCRIBERS,
            )
        )

    def _set_reconnect_delay(self, delay_s: float) -> None:
        # paho waits whole seconds between attempts; its own doubling is replaced by
        # ours (same minimum and maximum), so the jitter survives.
        whole_s = max(1, math.ceil(delay_s))
        self._client.reconnect_delay_set(whole_s, whole_s)

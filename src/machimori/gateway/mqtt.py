"""The gateway's MQTT workers: MQTT 5 clients on one shared subscription, so the broker spreads device traffic
over them (and over other gateway processes); each message is acknowledged only once its reading is
durable or it has been refused, so a worker that dies leaves its unacknowledged messages to be sent again.
"""

from __future__ import annotations

import concurrent.futures
import logging
import ssl
import threading
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from machimori.config import Settings
from machimori.gateway.ingest import Gateway
from machimori.gateway.writer import Outcome

log = logging.getLogger(__name__)
TOPIC = "machimori/telemetry"
SHARE_GROUP = "machimori-gateway"
SESSION_EXPIRY_SECONDS = 3600  # the broker keeps a worker's unacknowledged messages this long after it drops


def device_topic(device_id: str, topic: str = TOPIC) -> str:
    """The topic a device publishes its readings to."""
    return f"{topic}/{device_id}"


class MqttWorker:
    """One MQTT 5 connection taking telemetry from the shared subscription and handing it to the gateway."""

    def __init__(self, gateway: Gateway, url: str, client_id: str, topic: str = TOPIC) -> None:
        self.gateway = gateway
        self.prefix = topic + "/"
        self.url = urlsplit(url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if self.url.username:
            self.client.username_pw_set(unquote(self.url.username), unquote(self.url.password or ""))
        if self.url.scheme == "mqtts":
            self.client.tls_set_context(ssl.create_default_context())
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        self.subscribed = threading.Event()

    def start(self) -> MqttWorker:
        """Connect (keeping the broker-side session, so unacknowledged messages survive a restart) and run."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        port = self.url.port or (8883 if self.url.scheme == "mqtts" else 1883)
        self.client.connect(self.url.hostname or "127.0.0.1", port, clean_start=False, properties=properties)
        self.client.loop_start()
        return self

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _connected(self, client: mqtt.Client, _data: object, _flags: object, reason: object, _props: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT broker refused the gateway: %s", reason)
            return
        client.subscribe(f"$share/{SHARE_GROUP}/{self.prefix}+", qos=1)
        self.subscribed.set()

    def _message(self, client: mqtt.Client, _data: object, message: mqtt.MQTTMessage) -> None:
        claimed = message.topic.removeprefix(self.prefix) if message.topic.startswith(self.prefix) else ""
        done = self.gateway.submit(bytes(message.payload), "mqtt", None, claimed_device=claimed)
        mid, qos = message.mid, message.qos
        done.add_done_callback(lambda finished: self._settle(finished, mid, qos))

    def _settle(self, finished: concurrent.futures.Future[Outcome], mid: int, qos: int) -> None:
        if finished.exception() is None:
            self.client.ack(mid, qos)  # stored or refused for good: the broker may forget it
            return
        # not stored: leave it unacknowledged and reconnect, so the broker sends it again
        log.error("reading not stored; reconnecting so the broker redelivers it")
        threading.Thread(target=self.client.reconnect, daemon=True).start()


def start_mqtt_workers(settings: Settings, gateway: Gateway) -> list[MqttWorker]:
    """The configured number of workers on the configured broker (none if no broker is set)."""
    if not settings.gateway_mqtt_url:
        return []
    return [
        MqttWorker(
            gateway, settings.gateway_mqtt_url, f"{settings.gateway_mqtt_client_id}-{n}", settings.gateway_mqtt_topic
        ).start()
        for n in range(settings.gateway_mqtt_workers)
    ]

"""Every record of a stream on an MQTT broker (paho-mqtt, extra `mqtt`).

    --mqtt [mqtt://|mqtts://]HOST[:PORT]/TOPIC      (port 1883, or 8883 with TLS: mqtts:// or --mqtt-tls)

| topic | payload | QoS |
|---|---|---|
| TOPIC/window | each window's record, as its JSON line (`affect`, `people` included) | 0 |
| TOPIC/person/<id> | per person and window: the person's fields with window, start and end | 0 |
| TOPIC/event | each change event (runtime/signals.py) | 1 |
| TOPIC/summary | the summary at the end | 1 |
| TOPIC/status | "online" (retained), "offline" at the end or, as the broker's last will, when the stream vanishes | 1 |

Windows come every hop and the next one replaces a lost one: QoS 0. Events and the summary are rare and an HMI
acts on them: QoS 1 (at least once; `window` and `person` tell a repeat).

The broker may come and go (a car's broker starts later than the stream, a network drops): connecting and
reconnecting happen in paho's own thread with a backoff of 1 to 30 s, and records wait in a bounded queue
(QUEUE_SIZE); when it is full the oldest is dropped and counted. The stream never waits for the broker. The
counts are in the summary under `mqtt`. Username and password come from AFFECTGPT_MQTT_USERNAME /
AFFECTGPT_MQTT_PASSWORD only, never from the command line, and are never printed.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import sys
import threading
import time
import urllib.parse

from runtime.errors import EdgeError
from runtime.redact import redact

QUEUE_SIZE = 1000  # messages: at one window a second and a few people, minutes of an absent broker
CLOSE_WAIT_S = 5.0  # at the end, how long queued messages may wait for the broker
USERNAME_ENV, PASSWORD_ENV = "AFFECTGPT_MQTT_USERNAME", "AFFECTGPT_MQTT_PASSWORD"


class MqttError(EdgeError, ValueError):
    pass


def parse_target(target: str, tls: bool = False) -> tuple[str, int, str, bool]:
    """'[mqtt://|mqtts://]HOST[:PORT]/TOPIC' → (host, port, topic, tls). Raises MqttError on a bad target."""
    text = target.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "mqtt", text
    scheme = scheme.lower()
    if scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise MqttError(f"--mqtt: unknown scheme {scheme}:// (mqtt:// or mqtts://)")
    tls = tls or scheme in ("mqtts", "ssl")
    if any(c in rest for c in "+#?\0"):
        raise MqttError(f"--mqtt {redact(text)}: the topic may not hold wildcards (+ #) or '?'")
    parts = urllib.parse.urlsplit("//" + rest)
    if parts.username or parts.password:
        raise MqttError(f"--mqtt {redact(text)}: credentials go in ${USERNAME_ENV} / ${PASSWORD_ENV}, "
                        "not in the address")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise MqttError(f"--mqtt {redact(text)}: bad port") from None
    host, topic = parts.hostname, parts.path.strip("/")
    if not host or not topic:
        raise MqttError(f"--mqtt {redact(text)}: give HOST[:PORT]/TOPIC, e.g. localhost:1883/affect")
    return host, port, topic, tls


def check(target: str, tls: bool = False) -> None:
    """Refuse a bad target, or a missing paho-mqtt, before anything loads (MqttError)."""
    parse_target(target, tls)
    if importlib.util.find_spec("paho") is None:
        raise MqttError(_NO_PAHO)


_NO_PAHO = "--mqtt needs paho-mqtt: pip install 'affectgpt-edge[mqtt]'"


class MqttPublisher:
    """An observer of the stream's records (`record`, `summary`, `close`) that publishes them; see the module."""

    def __init__(self, target: str, tls: bool = False, queue_size: int = QUEUE_SIZE, client_id: str | None = None):
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise MqttError(_NO_PAHO) from None
        self.host, self.port, self.topic, self.tls = parse_target(target, tls)
        self._mqtt = mqtt
        self.published = self.dropped = self.connects = 0
        self._queue: collections.deque = collections.deque()
        self._size = queue_size
        self._cond = threading.Condition()
        self._connected = False
        self._closing = False
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"affectgpt-{os.getpid()}",
                             protocol=mqtt.MQTTv311)
        username = os.environ.get(USERNAME_ENV)
        if username:
            client.username_pw_set(username, os.environ.get(PASSWORD_ENV))
        if self.tls:
            client.tls_set()  # the system's CA store; the broker's name is checked
        client.max_queued_messages_set(100)  # QoS 1 messages paho holds for a reconnect; the rest wait here
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.will_set(f"{self.topic}/status", "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self.client = client
        try:
            client.connect_async(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as err:
            raise MqttError(f"--mqtt {self.address}: {err}") from None
        client.loop_start()  # connects, and reconnects, in its own thread: a broker that is not up yet is retried
        self._thread = threading.Thread(target=self._pump, daemon=True, name="mqtt")
        self._thread.start()
        timer = threading.Timer(5.0, self._warn_unreachable)
        timer.daemon = True
        timer.start()

    @property
    def address(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}/{self.topic}"

    def _warn_unreachable(self) -> None:
        if not self._connected and not self._closing and not self.connects:
            print(f"warning: MQTT broker {redact(self.address)} not reachable yet: records wait (the oldest dropped "
                  f"beyond {self._size}) while it keeps being tried", file=sys.stderr)

    def _on_connect(self, client, userdata, flags, reason, properties=None):
        if reason.is_failure:  # e.g. bad credentials: paho tries again later
            print(f"warning: MQTT broker {redact(self.address)} refused the connection: {reason}", file=sys.stderr)
            return
        client.publish(f"{self.topic}/status", "online", qos=1, retain=True)
        with self._cond:
            self._connected = True
            self.connects += 1
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason, properties=None):
        with self._cond:
            self._connected = False

    def _put(self, topic: str, payload: dict, qos: int) -> None:
        with self._cond:
            if len(self._queue) >= self._size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((f"{self.topic}/{topic}", json.dumps(payload), qos))
            self._cond.notify_all()

    def _pump(self) -> None:
        mqtt = self._mqtt
        while True:
            with self._cond:
                while not (self._connected and self._queue) and not (self._closing and not self._queue):
                    self._cond.wait(0.5)
                if not self._queue:
                    return
                topic, payload, qos = self._queue[0]
            info = self.client.publish(topic, payload, qos=qos)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                with self._cond:
                    self._queue.popleft()
                    self.published += 1
            else:  # not connected after all, or paho's own queue full: wait for the broker and try again
                with self._cond:
                    if info.rc == mqtt.MQTT_ERR_NO_CONN:
                        self._connected = self._connected and self.client.is_connected()
                    self._cond.wait(0.2)

    # observer hooks, in the record writer's thread
    def record(self, record: dict) -> None:
        self._put("window", {k: v for k, v in record.items() if k != "events"}, 0)
        if not (record.get("error") or record.get("skipped")):
            window = {k: record.get(k) for k in ("window", "start", "end")}
            for i, person in enumerate(record.get("people") or [record]):
                pid = person.get("id", i) if record.get("people") else 0
                fields = {k: v for k, v in person.items() if k not in ("people", "events", "timings_ms")}
                self._put(f"person/{pid}", {**fields, **window, "id": pid}, 0)
        for event in record.get("events") or ():
            self._put("event", event, 1)

    def summary(self, summary: dict) -> None:
        summary["mqtt"] = self.counts()
        self._put("summary", summary, 1)

    def counts(self) -> dict:
        with self._cond:
            return {"published": self.published, "dropped": self.dropped, "waiting": len(self._queue),
                    "connects": self.connects}

    def close(self, timeout: float = CLOSE_WAIT_S) -> None:
        """Send what waits (at most `timeout` s, for a broker that may be connecting), say offline, disconnect."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            while self._queue and time.monotonic() < deadline:  # a broker (re)connecting now still gets them
                self._cond.wait(0.1)
            if not self._connected:
                self.dropped += len(self._queue)
                self._queue.clear()
                self._cond.notify_all()
        self._thread.join(max(0.1, deadline - time.monotonic()))
        if self.client.is_connected():
            info = self.client.publish(f"{self.topic}/status", "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
            while self.client.want_write() and time.monotonic() < deadline:
                time.sleep(0.02)
        self.client.disconnect()
        self.client.loop_stop()

"""--mqtt against a real mosquitto broker started here: every record arrives, a broker that goes away and comes back
costs the stream nothing, and one that is never there neither blocks nor fails it."""

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from runtime.mqtt import MqttError, parse_target

paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (extra mqtt)")
MOSQUITTO = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if Path(p).is_file()), None)
needs_broker = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (Debian package mosquitto)")


def test_targets():
    assert parse_target("localhost/affect") == ("localhost", 1883, "affect", False)
    assert parse_target("mqtt://10.0.0.2:1884/car/cabin") == ("10.0.0.2", 1884, "car/cabin", False)
    assert parse_target("mqtts://broker.example/a") == ("broker.example", 8883, "a", True)
    assert parse_target("broker/a", tls=True)[1:] == (8883, "a", True)
    assert parse_target("[::1]:1883/a")[:2] == ("::1", 1883)
    for bad, why in (("localhost", "HOST"), ("localhost:1883/", "HOST"), ("h/a/#", "wildcards"),
                     ("http://h/a", "scheme"), ("h:99999/a", "port")):
        with pytest.raises(MqttError, match=why):
            parse_target(bad)
    with pytest.raises(MqttError, match="AFFECTGPT_MQTT_USERNAME") as err:
        parse_target("mqtt://me:s3cret@h/a")
    assert "s3cret" not in str(err.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, folder: Path):
        self.port = _free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.process = None

    def start(self):
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


class Subscriber:
    """Everything published under TOPIC/#, in arrival order; subscribes again after a reconnect."""

    def __init__(self, port: int, topic: str):
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        self.client.on_connect = lambda c, *_: c.subscribe(f"{topic}/#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def of(self, topic: str) -> list:
        return [json.loads(p) if p[:1] in (b"{", b"[") else p.decode() for t, p in list(self.messages) if t == topic]

    def wait(self, topic: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.of(topic) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def default_pipeline():
    from runtime.api import DEMO_BUNDLE, open_bundle

    if not (DEMO_BUNDLE / "manifest.json").is_file():
        pytest.skip("the embedded default is not installed")
    pipeline = open_bundle(DEMO_BUNDLE)
    yield pipeline
    pipeline.close()


@pytest.fixture(scope="module")
def change_clip(tmp_path_factory) -> Path:
    from benchmarks.reaction import make_change_clip

    path = tmp_path_factory.mktemp("mqtt") / "sad-then-happy.mp4"
    make_change_clip(path, seconds=5.0)
    return path


@needs_broker
def test_a_short_run_arrives_with_its_change_event(tmp_path, default_pipeline, change_clip):
    from runtime.api import Stream

    broker = Broker(tmp_path).start()
    sub = Subscriber(broker.port, "affect")
    try:
        stream = Stream(str(change_clip), pipeline=default_pipeline, smooth=0, hold=1, vad="off",
                        mqtt=f"127.0.0.1:{broker.port}/affect")
        answers = list(stream)
        sub.wait("affect/summary")
    finally:
        sub.close()
        broker.stop()
    windows = sub.of("affect/window")
    assert [w["window"] for w in windows] == [a.window for a in answers], stream.summary["mqtt"]
    assert all("events" not in w and "affect" in w for w in windows if "labels" in w)
    ids = [[p.get("id", i) for i, p in enumerate(a.people)] or [0] for a in answers]  # person 0: no people list
    person = [m for t, m in sub.messages if t.startswith("affect/person/")]
    assert len(person) == sum(map(len, ids))
    first = sub.of(f"affect/person/{ids[0][0]}")[0]
    assert {"id", "labels", "affect", "start", "end"} <= set(first) and first["id"] == ids[0][0]
    events = sub.of("affect/event")
    assert events == [e for a in answers for e in a.events]
    assert any(e["from"] is not None and e["from"] != e["to"] for e in events), events  # a change, not just a start
    summary = sub.of("affect/summary")[0]
    assert summary["events"] == len(events) and summary["mqtt"]["dropped"] == 0
    assert sub.of("affect/status")[:1] == ["online"] and sub.of("affect/status")[-1] == "offline"


@pytest.mark.slow  # the clip is read at 1x speed: 10 s at least
@needs_broker
def test_the_broker_goes_away_and_comes_back(tmp_path, default_pipeline, change_clip):
    """Stopped after the first window and started again two seconds later: every window is still answered, and
    publishing resumes on the new broker."""
    from runtime.api import Stream

    broker = Broker(tmp_path).start()
    sub = Subscriber(broker.port, "car")
    stream = Stream(str(change_clip), pipeline=default_pipeline, realtime=True, vad="off",
                    mqtt=f"127.0.0.1:{broker.port}/car")
    answers = []
    try:
        for answer in stream:
            answers.append(answer)
            if len(answers) == 1:
                sub.wait("car/window")
                broker.stop()
                time.sleep(2.0)
                broker.start()
        sub.wait("car/summary")
    finally:
        sub.close()
        broker.stop()
    assert len(answers) >= 4 and stream.summary["answered"] == len(answers)
    after = [w["window"] for w in sub.of("car/window")]
    assert after[0] == 0 and after[-1] == answers[-1].window  # the last windows arrived through the new broker
    summary = sub.of("car/summary")[0]
    assert summary["mqtt"]["connects"] >= 2


def test_a_broker_that_is_not_there_never_blocks_the_stream(bundle_f16, clip_path, capfd):
    from runtime.api import Stream

    port = _free_port()
    started = time.monotonic()
    stream = Stream(str(clip_path), bundle=bundle_f16, vad="off", max_windows=2, mqtt=f"127.0.0.1:{port}/x")
    answers = list(stream)
    assert answers and time.monotonic() - started < 60
    counts = stream.summary["mqtt"]
    assert counts["published"] == 0 and counts["connects"] == 0 and counts["waiting"] >= len(answers)

"""A subscriber written only from docs/PROTOCOL.md (plain pyzmq + json, no polypwatch imports) decodes every
message of a real pipeline."""
import json
import re
import threading
import time
from pathlib import Path

import numpy as np
import zmq

from stream.config import load_config
from stream.pipeline import Pipeline

DOC = (Path(__file__).resolve().parents[1] / "docs" / "PROTOCOL.md").read_text()


def test_doc_example_subscriber_code_is_what_we_test():
    assert 'sub.setsockopt(zmq.MAXMSGSIZE, 64 << 20)' in DOC and 'header.get("v") != 1' in DOC


def test_subscriber_from_the_doc_decodes_every_message(clip, tiny_model, endpoint):
    cfg = load_config(None, [f"engine.model={tiny_model}", f"publisher.endpoint={endpoint}", "capture.pace=false",
                             "publisher.send_frames=true", "publisher.frame_encoding=raw", "publisher.sndhwm=100000"])
    pipe = Pipeline(cfg, source=str(clip))
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.MAXMSGSIZE, 64 << 20)
    sub.setsockopt(zmq.RCVHWM, 100000)
    sub.connect(endpoint)
    time.sleep(0.3)
    th = threading.Thread(target=pipe.run)
    th.start()
    seen = {b"det": 0, b"status": 0, b"frame": 0}
    stages = ["capture", "preprocess", "infer", "postprocess", "alert", "publish"]
    t_end = time.monotonic() + 60
    while time.monotonic() < t_end and (th.is_alive() or sub.poll(200)):
        if not sub.poll(100):
            continue
        parts = sub.recv_multipart()
        topic, header = parts[0], json.loads(parts[1])
        assert header["v"] == 1
        seen[topic] += 1
        if topic == b"det":
            assert header["alert"] in ("on", "off", "error") and 0 <= header["score"] <= 1
            assert all(len(b) == 5 and all(0 <= v <= 1 for v in b) for b in header["boxes"])
            assert list(header["times_ns"]) == stages
            assert header["times_ns"]["capture"] == header["t_capture_ns"]
        elif topic == b"status":
            assert header["state"] in ("starting", "running", "no_signal", "stopped", "error")
        else:
            h, w, c = header["shape"]
            img = np.frombuffer(parts[2], np.uint8).reshape(h, w, c)      # row-major BGR
            assert header["encoding"] == "raw" and img.shape == (240, 320, 3)
    th.join(10)
    assert seen[b"det"] == 120 and seen[b"frame"] == 120 and seen[b"status"] >= 1
    # every field the doc's table lists is present in real messages
    for field in re.findall(r"^\| `(\w+)` \| (?:int|string|number|array|object|`)", DOC, re.M):
        assert field in ("seq", "frame_index", "t_capture_ns", "source", "score", "alert", "boxes", "model_id",
                         "times_ns", "error")

import json

import numpy as np
import pytest

from engines.errors import WireError
from stream.detection import AlertState, Box, Detection
from stream.wire import MAX_HEADER_BYTES, FrameMessage, Status, decode, encode_detection, encode_frame, encode_status


def _det():
    return Detection(seq=7, t_capture_ns=1000, source="cam", score=0.83, alert=AlertState.ON,
                     boxes=(Box(0.1, 0.2, 0.3, 0.4, 0.9),), model_id="m1", frame_index=9,
                     times_ns={"capture": 1000, "preprocess": 2000, "infer": 5000, "publish": 6000})


def test_detection_round_trip_without_socket():
    assert decode(encode_detection(_det())) == _det()


def test_status_round_trip():
    s = Status(state="no_signal", t_ns=5, source="cam", fps=29.5, dropped=3,
               latency_ms={"capture_to_publish": {"p50": 1.0}}, message="lost")
    assert decode(encode_status(s)) == s


@pytest.mark.parametrize("encoding", ["raw", "jpeg"])
def test_frame_round_trip(encoding):
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    img[:] = 128 if encoding == "jpeg" else img      # JPEG is lossy: a flat image survives exactly enough
    parts = encode_frame(FrameMessage(3, 77, "cam", img, 3), encoding)
    parts = [bytes(p) for p in parts]
    out = decode(parts)
    assert (out.seq, out.t_capture_ns, out.source, out.image.shape) == (3, 77, "cam", (48, 64, 3))
    assert np.abs(out.image.astype(int) - img).max() <= (0 if encoding == "raw" else 3)


def _hdr(**kw):
    h = json.loads(encode_detection(_det())[1])
    h.update(kw)
    return json.dumps(h).encode()


@pytest.mark.parametrize("parts, message", [
    ([], r"message: empty"),
    ([b"xyz", b"{}"], r"topic: unknown b'xyz'"),
    ([b"det"], r"expected at least 2 parts"),
    ([b"det", b"\xff\xfe"], r"header: not JSON"),
    ([b"det", b"[1, 2]"], r"expected a JSON object, got list"),
    ([b"det", _hdr(v=2)], r"unsupported version 2, expected 1"),
    ([b"det", _hdr(score="high")], r"detection.score: expected float, got str"),
    ([b"det", _hdr(score=1.5)], r"Detection.score: expected 0..1"),
    ([b"det", _hdr(alert="maybe")], r"'maybe' is not a valid AlertState"),
    ([b"det", _hdr(boxes=[[0.1, 0.2]])], r"expected \[x0, y0, x1, y1, score\]"),
    ([b"det", _hdr(boxes=[[0, 0, 0.1, 0.1, 0.5]] * 40)], r"40 boxes, more than 32"),
    ([b"det", _hdr(times_ns={"draw": 1})], r"times_ns: expected integer times"),
    ([b"det", _hdr(), b"extra"], r"detection: expected 2 parts, got 3"),
    ([b"det", b"{" + b" " * MAX_HEADER_BYTES + b"}"], r"more than the limit"),
    ([b"status", b'{"v": 1, "state": "dancing", "t_ns": 1}'], r"status.state: expected one of"),
    ([b"frame", b'{"v": 1, "seq": 1, "t_capture_ns": 1, "source": "s", "encoding": "raw", "dtype": "uint8", '
               b'"shape": [2, 2, 3]}', b"123"], r"raw payload of 3 bytes does not match shape"),
    ([b"frame", b'{"v": 1, "seq": 1, "t_capture_ns": 1, "source": "s", "encoding": "jpeg", "dtype": "uint8", '
               b'"shape": [2, 2, 3]}', b"notajpeg"], r"JPEG payload does not decode"),
    ([b"frame", b'{"v": 1, "seq": 1, "t_capture_ns": 1, "source": "s", "encoding": "raw", "dtype": "float64", '
               b'"shape": [2, 2, 3]}', b"1" * 12], r"frame.dtype: expected 'uint8'"),
])
def test_malformed_messages_raise_wire_error(parts, message):
    with pytest.raises(WireError, match=message):
        decode(parts)


def test_no_pickle_anywhere_in_the_wire_module():
    import inspect

    import stream.wire as w
    assert "pickle" not in inspect.getsource(w).replace("No pickle", "")

"""The wire format (docs/PROTOCOL.md): ZeroMQ multipart [topic, JSON header, optional raw payload].

This module alone encodes and decodes messages. No pickle: headers are UTF-8 JSON objects with a version
field ``v``; frames carry their pixels as a separate raw or JPEG part described by the header.

Longer than 250 lines: the one module that owns the wire format keeps encode and decode, and the checks of every
field's type on the way in, side by side (STYLE.md, principle 8).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from engines.errors import WireError
from stream.detection import STAGES, AlertState, Box, Detection

VERSION = 1
TOPIC_DETECTION = b"det"
TOPIC_STATUS = b"status"
TOPIC_FRAME = b"frame"
TOPICS = (TOPIC_DETECTION, TOPIC_STATUS, TOPIC_FRAME)
MAX_HEADER_BYTES = 64 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024     # also the receive-size limit (ZMQ_MAXMSGSIZE) of our subscribers
MAX_BOXES = 32
MAX_TEXT = 4096                          # characters of any string field (source, model id, message, error)
INT64 = (-(1 << 63), (1 << 63) - 1)
STATES = ("running", "no_signal", "stopped", "error", "starting")


@dataclass(frozen=True)
class Status:
    """Heartbeat of the pipeline."""

    state: str                      # one of STATES
    t_ns: int                       # monotonic clock of the publisher when sent
    source: str = ""
    model_id: str = ""
    backend: str = ""
    fps: float = 0.0                # processed frames per second, recent
    processed: int = 0
    dropped: int = 0
    budget_misses: int = 0
    errors: int = 0
    budget_ms: float = 0.0
    latency_ms: dict = field(default_factory=dict)    # stage -> {p50, p95, p99, max, count}
    message: str = ""
    source_fps: float = 0.0         # the source's own frame rate (a file's, a device's); 0 = not known
    record: str = ""                # the procedure record: "" off, "ok", or "error: ..." (a full disk, say)
    procedure: str = ""             # the current procedure's folder name under record.dir ("" when off)
    site: str = ""                  # the site a site model was commissioned for ("" for a shipped model)

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise WireError(f"status.state: expected one of {STATES}, got {self.state!r}")


@dataclass(frozen=True, eq=False)
class FrameMessage:
    seq: int
    t_capture_ns: int
    source: str
    image: np.ndarray               # HxWx3 uint8 BGR
    frame_index: int = -1


# ------------------------------------------------------------------------------------------ encode
def _dump(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def encode_detection(d: Detection) -> list[bytes]:
    return [TOPIC_DETECTION, _dump({
        "v": VERSION, "seq": d.seq, "frame_index": d.frame_index, "t_capture_ns": d.t_capture_ns,
        "source": d.source, "score": round(d.score, 6), "alert": d.alert.value,
        "boxes": [[round(v, 5) for v in b.to_list()] for b in d.boxes], "model_id": d.model_id,
        "times_ns": d.times_ns, "error": d.error})]


def encode_status(s: Status) -> list[bytes]:
    return [TOPIC_STATUS, _dump({"v": VERSION, **{k: getattr(s, k) for k in Status.__dataclass_fields__}})]


def encode_frame(f: FrameMessage, encoding: str = "jpeg", quality: int = 80) -> list:
    """[topic, header, payload]; the payload is a buffer to be sent with copy=False."""
    img = np.ascontiguousarray(f.image)
    if encoding == "jpeg":
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise WireError("frame: JPEG encoding failed")
        payload = buf
    elif encoding == "raw":
        payload = memoryview(img).cast("B")
    else:
        raise WireError(f"frame encoding: expected 'jpeg' or 'raw', got {encoding!r}")
    header = {"v": VERSION, "seq": f.seq, "frame_index": f.frame_index, "t_capture_ns": f.t_capture_ns,
              "source": f.source, "encoding": encoding, "dtype": "uint8", "shape": list(img.shape)}
    return [TOPIC_FRAME, _dump(header), payload]


# ------------------------------------------------------------------------------------------ decode
def _header(parts: list[bytes]) -> dict:
    if len(parts) < 2:
        raise WireError(f"message: expected at least 2 parts (topic, header), got {len(parts)}")
    raw = bytes(parts[1])
    if len(raw) > MAX_HEADER_BYTES:
        raise WireError(f"header: {len(raw)} bytes, more than the limit of {MAX_HEADER_BYTES}")
    try:
        h = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError(f"header: not JSON ({str(e)[:120]})") from None
    except RecursionError:
        raise WireError("header: JSON nested too deeply") from None
    if not isinstance(h, dict):
        raise WireError(f"header: expected a JSON object, got {type(h).__name__}")
    if h.get("v") != VERSION:
        raise WireError(f"header: unsupported version {h.get('v')!r}, expected {VERSION}")
    return h


def _get(h: dict, key: str, typ, where: str):
    if key not in h:
        raise WireError(f"{where}: missing field {key!r}")
    v = h[key]
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    return _check(v, typ, f"{where}.{key}")


def _check(v, typ, where: str):
    """``v`` as the documented type, or WireError: ints within int64, finite floats, strings of at most MAX_TEXT."""
    if typ is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, typ) or isinstance(v, bool) and typ is not bool:
        raise WireError(f"{where}: expected {typ.__name__}, got {type(v).__name__}")
    if typ is float and not math.isfinite(v):
        raise WireError(f"{where}: expected a finite number, got {v}")
    if typ is int and not INT64[0] <= v <= INT64[1]:
        raise WireError(f"{where}: integer out of range")
    if typ is str and len(v) > MAX_TEXT:
        raise WireError(f"{where}: {len(v)} characters, more than {MAX_TEXT}")
    return v


def _optional(h: dict, key: str, typ, default, where: str):
    return _check(h[key], typ, f"{where}.{key}") if key in h else default


def decode_detection(h: dict) -> Detection:
    w = "detection"
    boxes_raw = _get(h, "boxes", list, w)
    if len(boxes_raw) > MAX_BOXES:
        raise WireError(f"{w}.boxes: {len(boxes_raw)} boxes, more than {MAX_BOXES}")
    times = _get(h, "times_ns", dict, w)
    if not all(k in STAGES and isinstance(v, int) and not isinstance(v, bool) and INT64[0] <= v <= INT64[1]
               for k, v in times.items()):
        raise WireError(f"{w}.times_ns: expected integer times for stages {STAGES}")
    if not all(isinstance(b, list) and len(b) == 5 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                           and math.isfinite(x) for x in b) for b in boxes_raw):
        raise WireError(f"{w}.boxes: expected [x0, y0, x1, y1, score] lists of finite numbers")
    try:
        boxes = tuple(Box.from_list(b) for b in boxes_raw)
        return Detection(seq=_get(h, "seq", int, w), t_capture_ns=_get(h, "t_capture_ns", int, w),
                         source=_get(h, "source", str, w), score=_get(h, "score", float, w),
                         alert=AlertState(_get(h, "alert", str, w)), boxes=boxes,
                         model_id=_get(h, "model_id", str, w), times_ns=times,
                         frame_index=_optional(h, "frame_index", int, -1, w),
                         error=_optional(h, "error", str, "", w))
    except (ValueError, TypeError, OverflowError) as e:
        raise WireError(f"{w}: {str(e)[:200]}") from None


_STATUS_TYPES = {"state": str, "t_ns": int, "source": str, "model_id": str, "backend": str, "fps": float,
                 "processed": int, "dropped": int, "budget_misses": int, "errors": int, "budget_ms": float,
                 "latency_ms": dict, "message": str, "source_fps": float, "record": str, "procedure": str, "site": str}


def _latency(v: dict, where: str) -> dict:
    """stage -> {p50, p95, p99, max, count}: names and finite numbers (or null: no figure yet) only."""
    if len(v) > 32:
        raise WireError(f"{where}: {len(v)} stages, more than 32")
    out = {}
    for stage, q in v.items():
        if not isinstance(q, dict) or len(stage) > 64 or len(q) > 16:
            raise WireError(f"{where}.{stage[:64]}: expected an object of figures")
        out[stage] = {_check(k, str, f"{where}.{stage}"): None if x is None else
                      _check(x, float, f"{where}.{stage}.{k[:32]}") for k, x in q.items()}
    return out


def decode_status(h: dict) -> Status:
    w = "status"
    kw = {k: _check(h[k], typ, f"{w}.{k}") for k, typ in _STATUS_TYPES.items() if k in h}
    if "state" not in kw or "t_ns" not in kw:
        raise WireError(f"{w}: missing field {'state' if 'state' not in kw else 't_ns'!r}")
    if "latency_ms" in kw:
        kw["latency_ms"] = _latency(kw["latency_ms"], f"{w}.latency_ms")
    return Status(**kw)


@dataclass(frozen=True, eq=False)
class FrameHeader:
    """A checked frame message whose pixels are not decoded yet (viewers that forward JPEG as it came)."""

    seq: int
    t_capture_ns: int
    source: str
    frame_index: int
    encoding: str                   # raw | jpeg
    shape: tuple[int, int, int]
    payload: memoryview             # raw pixels or a JPEG file, as sent


def peek_frame(h: dict, parts: list) -> FrameHeader:
    """Check a frame message's header and payload size without decoding the pixels."""
    w = "frame"
    if len(parts) != 3:
        raise WireError(f"{w}: expected 3 parts (topic, header, payload), got {len(parts)}")
    payload = parts[2]
    payload = memoryview(payload.buffer if hasattr(payload, "buffer") else payload).cast("B")
    if payload.nbytes > MAX_PAYLOAD_BYTES:
        raise WireError(f"{w}: payload of {payload.nbytes} bytes, more than {MAX_PAYLOAD_BYTES}")
    shape = _get(h, "shape", list, w)
    if len(shape) != 3 or shape[2] != 3 or not all(isinstance(v, int) and 0 < v <= 16384 for v in shape):
        raise WireError(f"{w}.shape: expected [height, width, 3], got {shape!r:.60}")
    if h.get("dtype") != "uint8":
        raise WireError(f"{w}.dtype: expected 'uint8', got {h.get('dtype')!r}")
    enc = _get(h, "encoding", str, w)
    if enc not in ("raw", "jpeg"):
        raise WireError(f"{w}.encoding: expected 'raw' or 'jpeg', got {enc!r}")
    if enc == "raw" and payload.nbytes != shape[0] * shape[1] * 3:
        raise WireError(f"{w}: raw payload of {payload.nbytes} bytes does not match shape {shape}")
    if enc == "jpeg" and bytes(payload[:2]) != b"\xff\xd8":
        raise WireError(f"{w}: JPEG payload does not decode (no JPEG start marker)")
    return FrameHeader(seq=_get(h, "seq", int, w), t_capture_ns=_get(h, "t_capture_ns", int, w),
                       source=_get(h, "source", str, w), frame_index=_optional(h, "frame_index", int, -1, w),
                       encoding=enc, shape=tuple(shape), payload=payload)


def decode_frame(h: dict, parts: list) -> FrameMessage:
    f = peek_frame(h, parts)
    buf = np.frombuffer(f.payload, np.uint8)
    if f.encoding == "raw":
        img = buf.reshape(f.shape)
    else:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if img is None or tuple(img.shape) != f.shape:
            raise WireError(f"frame: JPEG payload does not decode to shape {list(f.shape)}")
    return FrameMessage(seq=f.seq, t_capture_ns=f.t_capture_ns, source=f.source, image=img, frame_index=f.frame_index)


def decode(parts: list, frame_pixels: bool = True) -> Detection | Status | FrameMessage | FrameHeader:
    """One received multipart message -> its object; raises WireError for anything malformed, and for nothing
    else: every field is checked into its documented type, and whatever slipped past those checks is a WireError
    too (a subscriber's thread counts it and goes on; it never dies of a value it did not expect).
    ``frame_pixels=False``: a frame comes back as a checked FrameHeader with its payload undecoded."""
    try:
        return _decode(parts, frame_pixels)
    except WireError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError, AttributeError, cv2.error) as e:
        raise WireError(f"message: {type(e).__name__}: {str(e)[:200]}") from None


def _decode(parts: list, frame_pixels: bool) -> Detection | Status | FrameMessage | FrameHeader:
    if not parts:
        raise WireError("message: empty")
    topic = bytes(parts[0].bytes if hasattr(parts[0], "bytes") else parts[0])
    if topic not in TOPICS:
        raise WireError(f"topic: unknown {topic[:32]!r}, expected one of {TOPICS}")
    h = _header([p.bytes if hasattr(p, "bytes") and i < 2 else p for i, p in enumerate(parts)])
    if topic == TOPIC_DETECTION:
        if len(parts) != 2:
            raise WireError(f"detection: expected 2 parts, got {len(parts)}")
        return decode_detection(h)
    if topic == TOPIC_STATUS:
        if len(parts) != 2:
            raise WireError(f"status: expected 2 parts, got {len(parts)}")
        return decode_status(h)
    return decode_frame(h, parts) if frame_pixels else peek_frame(h, parts)

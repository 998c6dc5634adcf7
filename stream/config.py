"""Configuration: YAML, one section per stage, validated at load into frozen dataclasses.

An unknown key, a wrong type or an out-of-range value raises ConfigError naming the key, the value and what
was expected (and the nearest valid key for a typo). ``--set section.key=value`` overrides are applied first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints


from engines.errors import ConfigError
from engines.runtime.alerts import AlertsConfig
from engines.settings import build_section, load_yaml, show, suggest as _suggest


# ---------------------------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class CaptureConfig:
    source: str = "synthetic://seed=1"   # device index, /dev/videoN, file, folder, rtsp://..., synthetic://...
    source_id: str = ""                   # name carried on frames and messages (default: derived from source)
    width: int = 0                        # device capture size (0 = leave the device's default)
    height: int = 0
    fps: float = 0.0                      # device fps / pacing of files and folders (0 = the file's own fps)
    fourcc: str = ""                      # device pixel format, e.g. MJPG
    pace: bool = True                     # files/folders: real-time pacing (drop what cannot be kept up with)
    loop: bool = False                    # files/folders/synthetic: start again at the end
    reopen_initial_s: float = 0.5         # live sources: first reopen delay after a failure
    reopen_max_s: float = 5.0             # ... growing to at most this
    read_timeout_s: float = 2.0           # no frame for this long: NO SIGNAL

    _ranges = {"width": (0, 7680), "height": (0, 4320), "fps": (0, 240), "reopen_initial_s": (0.01, 60),
               "reopen_max_s": (0.01, 600), "read_timeout_s": (0.05, 60)}


@dataclass(frozen=True)
class PreprocessConfig:
    active_area_every: int = 30           # search the active area at least every N frames (1 = every frame); also
                                          # at once on a new frame size or when the dark border lights up
    opencv_threads: int = 1               # OpenCV's worker threads in the pipeline process (0 = OpenCV's default, one
                                          # per core): 1 leaves the cores to ONNX Runtime's pool and the decoder

    _ranges = {"active_area_every": (1, 10000), "opencv_threads": (0, 256)}


@dataclass(frozen=True)
class EngineConfig:
    model: str = ""                       # ONNX file ('' = the shipped default model)
    backend: str = "auto"                 # auto | onnxruntime | torch | tensorrt
    threads: int = 2                      # CPU threads for inference
    spin_wait: bool = False               # onnxruntime: idle workers sleep (frees the core) or spin (docs/BENCHMARKS.md)
    device: str = "auto"                  # torch: auto | cpu | cuda | cuda:N
    engine_file: str = ""                 # TensorRT engine (tools/build_engine output)
    device_preprocess: bool = False       # torch/TensorRT: the whole frame path on the GPU, one CUDA graph per frame size
    max_consecutive_errors: int = 30      # this many failed frames in a row stop the run
    batch_size: int = 1                   # replay of every frame (QA) only: frames per inference call, decoded
                                          # ahead in a thread; the live path always takes the newest single frame
    precision: str = "auto"               # onnxruntime: auto (the INT8 twin where the CPU has VNNI) | fp32 | int8

    _ranges = {"threads": (0, 256), "max_consecutive_errors": (1, 100000), "batch_size": (1, 64)}
    _choices = {"backend": ("auto", "onnxruntime", "torch", "tensorrt"), "precision": ("auto", "fp32", "int8")}


@dataclass(frozen=True)
class PublisherConfig:
    endpoint: str = "tcp://127.0.0.1:5560"
    allow_non_loopback: bool = False      # binding beyond loopback must be asked for explicitly
    send_frames: bool = False             # also publish the video on the 'frames' topic
    frame_encoding: str = "jpeg"          # jpeg | raw
    jpeg_quality: int = 80
    frame_max_width: int = 0              # down-scale published frames wider than this (0 = full size)
    heartbeat_hz: float = 5.0
    sndhwm: int = 100                     # messages queued per subscriber before ZeroMQ drops
    curve_secret_key: str = ""            # CURVE: this server's NAME.key_secret ("" = no encryption)
    curve_allowed_clients: str = ""       # CURVE: folder of the public .key files of allowed subscribers

    _ranges = {"jpeg_quality": (10, 100), "frame_max_width": (0, 7680), "heartbeat_hz": (0.2, 100),
               "sndhwm": (1, 100000)}
    _choices = {"frame_encoding": ("jpeg", "raw")}


@dataclass(frozen=True)
class PipelineConfig:
    budget_ms: float = 33.0               # capture -> publish latency budget per frame
    max_frames: int = 0                   # stop after this many processed frames (0 = no limit)
    max_seconds: float = 0.0              # stop after this long (0 = no limit)
    detections_log: str = ""              # optional JSON-lines file of every detection

    _ranges = {"budget_ms": (1, 10000), "max_frames": (0, 10**9), "max_seconds": (0, 10**7)}


@dataclass(frozen=True)
class MetricsConfig:
    listen: str = ""                      # HOST:PORT of the Prometheus text endpoint ("" = off), e.g. 127.0.0.1:9464
    allow_non_loopback: bool = False      # serving beyond loopback must be asked for explicitly


@dataclass(frozen=True)
class RecordConfig:
    dir: str = ""                         # procedure records go here, one folder per run ("" = off)
    max_mb: float = 2000.0                # the oldest procedures are removed past this size
    thumb_width: int = 640                # gallery images (and footage frames) are at most this wide
    footage: bool = False                 # keep the procedure's frames (JPEG at thumb_width) for review and commissioning
    footage_fps: float = 4.0              # ... at this rate outside alert episodes and marks (every frame inside them)
    mark_seconds: float = 3.0             # a mark ("polyp here") keeps every frame this long before and after it

    _ranges = {"max_mb": (0.01, 10**7), "thumb_width": (64, 7680), "footage_fps": (0.2, 60),
               "mark_seconds": (0.5, 30)}

    def validate(self) -> None:
        if self.dir and Path(self.dir).absolute() == Path(Path(self.dir).absolute().anchor):
            raise ConfigError(f"record.dir: expected a folder for procedure records, got the root folder {self.dir!r} "
                              f"(the record would count and walk the whole file system)")


@dataclass(frozen=True)
class Config:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    publisher: PublisherConfig = field(default_factory=PublisherConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    extra: dict = field(default_factory=dict)   # sections owned by other processes (overlay, replay, ...)


SECTIONS: dict[str, type] = {k: v for k, v in get_type_hints(Config).items() if k != "extra"}
EXTERNAL_SECTIONS: dict[str, type] = {}      # filled by modules that own further sections (overlay, ...)


def register_section(name: str, cls: type) -> None:
    EXTERNAL_SECTIONS[name] = cls


def _check_cross(cfg: Config) -> None:
    a = cfg.alerts
    if a.min_hits > a.window:
        raise ConfigError(f"alerts.min_hits: expected at most alerts.window ({a.window}), got {a.min_hits}")
    if a.min_misses > a.window:
        raise ConfigError(f"alerts.min_misses: expected at most alerts.window ({a.window}), got {a.min_misses}")
    if a.on_threshold and a.off_threshold and a.off_threshold > a.on_threshold:
        raise ConfigError(f"alerts.off_threshold: expected at most alerts.on_threshold ({a.on_threshold}), "
                          f"got {a.off_threshold}")
    c = cfg.capture
    if c.reopen_max_s < c.reopen_initial_s:
        raise ConfigError(f"capture.reopen_max_s: expected at least capture.reopen_initial_s "
                          f"({c.reopen_initial_s}), got {c.reopen_max_s}")
    for key, value in (("capture.source", c.source), ("engine.model", cfg.engine.model),
                       ("engine.engine_file", cfg.engine.engine_file), ("pipeline.detections_log",
                                                                       cfg.pipeline.detections_log),
                       ("record.dir", cfg.record.dir), ("publisher.curve_secret_key", cfg.publisher.curve_secret_key)):
        check_path_value(key, value)
    from stream.endpoints import check_endpoint
    check_endpoint("publisher.endpoint", cfg.publisher.endpoint, cfg.publisher.allow_non_loopback)
    check_output_path("pipeline.detections_log", cfg.pipeline.detections_log)
    if cfg.metrics.listen:
        from stream.endpoints import is_loopback_host, parse_listen
        host, _ = parse_listen("metrics.listen", cfg.metrics.listen)
        if not cfg.metrics.allow_non_loopback and not is_loopback_host(host):
            raise ConfigError(f"metrics.listen: {cfg.metrics.listen!r} is not a loopback address; set "
                              f"metrics.allow_non_loopback: true to serve the metrics on the network "
                              f"(docs/SECURITY.md)")


def check_path_value(key: str, value: str) -> None:
    """A path in the configuration or on the command line: no NUL, no component over 255 bytes, at most 4096 bytes in
    all (refused here, never an OSError later)."""
    if "\0" in value:
        raise ConfigError(f"{key}: a NUL character in {show(value)}")
    long = next((c for c in value.split("/") if len(c.encode()) > 255), None)
    if long is not None:
        raise ConfigError(f"{key}: a path component of {len(long.encode())} bytes ({long[:40]}…); file names are at "
                          f"most 255 bytes")
    if len(value.encode()) > 4096:
        raise ConfigError(f"{key}: a path of {len(value.encode())} bytes ({value[:40]}…); paths are at most 4096 bytes")


def check_output_path(key: str, value: str) -> None:
    """An output file named in a config: its folder must exist and be writable, and it must not be a folder."""
    if not value:
        return
    check_path_value(key, value)
    import os
    p = Path(value)
    if "\0" in value or p.is_dir():
        raise ConfigError(f"{key}: expected a file path, got {value!r}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"{key}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{key}: folder {str(parent)!r} is not writable")


def parse_override(text: str) -> tuple[str, str, Any]:
    """'section.key=value' -> (section, key, YAML-parsed value)."""
    m = re.fullmatch(r"([A-Za-z_][\w]*)\.([A-Za-z_][\w]*)=(.*)", text.strip(), re.S)
    if not m:
        raise ConfigError(f"--set {show(text)}: expected section.key=value, e.g. alerts.window=8")
    value = load_yaml(m.group(3), f"--set {m.group(1)}.{m.group(2)}") if m.group(3) != "" else ""
    return m.group(1), m.group(2), value


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read ``path`` (or the defaults), apply overrides, validate every section. Raises ConfigError."""
    raw: dict = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise ConfigError(f"config {p}: cannot read ({e.strerror})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config {p}: not UTF-8 text (a YAML file was expected)") from None
        raw = load_yaml(text, f"config {p}") or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"config {p}: expected a mapping of sections, got {type(raw).__name__}")
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    all_sections = {**SECTIONS, **EXTERNAL_SECTIONS}
    for text in overrides:
        sec, key, value = parse_override(text)
        if sec not in all_sections:
            raise ConfigError(f"--set {show(text)}: unknown section {sec!r}{_suggest(sec, all_sections)}; "
                              f"expected one of {list(all_sections)}")
        raw.setdefault(sec, {})
        if not isinstance(raw[sec], dict):
            raise ConfigError(f"{sec}: expected a mapping of keys, got {show(raw[sec])}")
        raw[sec][key] = value
    for sec in raw:
        if sec not in all_sections:
            raise ConfigError(f"{str(sec)[:80]}: unknown section{_suggest(str(sec)[:80], all_sections)}; "
                              f"expected one of {list(all_sections)}")
    built = {name: build_section(name, cls, raw.get(name)) for name, cls in SECTIONS.items()}
    extra = {name: build_section(name, cls, raw.get(name)) for name, cls in EXTERNAL_SECTIONS.items()}
    cfg = Config(**built, extra=extra)
    _check_cross(cfg)
    return cfg

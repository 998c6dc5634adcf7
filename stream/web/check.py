"""Check one uploaded image or short clip with the model: score, alert decision, boxes, heat map, as JSON.

The file's type is told from its first bytes, never from its name (engines.runtime.media): an image's size is
read from its header and refused before anything is decoded; a video is opened only as the container its magic
bytes name, so a playlist (FFmpeg's ffconcat, HLS) can never make the server read files or URLs the client did not
send. Everything that can be wrong with an upload (not an image or video, too large, too long, truncated) raises
``UploadError`` with a message for the user.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from dataclasses import dataclass

import cv2
import numpy as np

from engines.errors import PolypwatchError
from engines.detector import Detector
from engines.runtime.media import KNOWN, Media, sniff
from engines.runtime.alerts import AlertFilter
from stream.detection import AlertState

HEATMAP_GRID_WIDTH = 32          # the heat map in the JSON result: this many columns
PREVIEW_MAX_WIDTH = 960
MAX_SIDE = 16384
MAX_PIXELS = 40_000_000          # 8K UHD is 33 MP; a bigger image is refused from its header, never decoded


class UploadError(PolypwatchError):
    """An upload polypwatch cannot check; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CheckLimits:
    max_bytes: int
    max_clip_frames: int
    max_clip_seconds: float


@dataclass(frozen=True, eq=False)
class CheckResult:
    result: dict           # JSON-ready: what the model said
    preview_jpeg: bytes    # the (most suspicious) frame with heat map and boxes


def _boxes(result) -> list[list[float]]:
    return [[round(v, 4) for v in b.to_list()] for b in result.boxes]


def heatmap_grid(heat: np.ndarray) -> dict:
    h, w = heat.shape
    gw = min(HEATMAP_GRID_WIDTH, w)
    gh = max(1, round(h * gw / w))
    small = cv2.resize(heat, (gw, gh), interpolation=cv2.INTER_AREA)
    return {"width": gw, "height": gh, "values": [[round(float(v), 3) for v in row] for row in small]}


def render_preview(image: np.ndarray, heat: np.ndarray | None, boxes: list[list[float]], draw_boxes: bool) -> bytes:
    """The frame with the heat map blended in (where it is above 0.1) and, if ``draw_boxes``, the boxes."""
    img = image.copy()
    if heat is not None:
        colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
        alpha = (np.clip((heat - 0.1) / 0.9, 0, 1) * 0.6)[..., None]
        img = (img * (1 - alpha) + colour * alpha).astype(np.uint8)
    h, w = img.shape[:2]
    t = max(2, w // 240)
    if draw_boxes:
        for x0, y0, x1, y1, _ in boxes:
            cv2.rectangle(img, (round(x0 * w), round(y0 * h)), (round(x1 * w) - 1, round(y1 * h) - 1),
                          (0, 255, 0), t, cv2.LINE_AA)
    if w > PREVIEW_MAX_WIDTH:
        img = cv2.resize(img, (PREVIEW_MAX_WIDTH, round(h * PREVIEW_MAX_WIDTH / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""


def _not_media(name: str) -> UploadError:
    return UploadError(f"{name or 'the upload'}: neither an image nor a video polypwatch can read ({KNOWN}; told "
                       f"from the file's first bytes, not its name); no frame could be decoded, which is also what a "
                       f"video that is empty or cut short (truncated) gives", status=415)


def _check_image_size(w: int, h: int, what: str) -> None:
    if h < 16 or w < 16:
        raise UploadError(f"{what}: {w}x{h} pixels; expected at least 16x16")
    if h > MAX_SIDE or w > MAX_SIDE or w * h > MAX_PIXELS:
        raise UploadError(f"{what}: {w}x{h} pixels; expected at most {MAX_SIDE} on a side and "
                          f"{MAX_PIXELS / 1e6:.0f} megapixels (refused from the header, not decoded)", status=413)


class Checker:
    """Owns a Detector of its own (the live pipeline's is in another process). Not thread-safe: one check at a
    time (the server runs them one by one in a worker thread)."""

    def __init__(self, cfg, limits: CheckLimits):
        self.limits = limits
        self.detector = Detector(cfg.engine, cfg.preprocess)
        self.detector.__enter__()
        self.threshold = self.detector.meta.threshold
        self.alerts_cfg = cfg.alerts
        self.model_id = self.detector.model_id
        rec = self.detector.precision.record()       # the file's name only: no server path leaves the server
        self.precision = {**rec, "model_file": Path(rec["model_file"]).name}

    def close(self) -> None:
        self.detector.__exit__(None, None, None)

    def _base(self, kind: str, name: str) -> dict:
        a = AlertFilter.from_config(self.alerts_cfg, self.threshold)
        return {"kind": kind, "name": name, "model_id": self.model_id, **self.precision,
                "threshold": round(self.threshold, 4),
                "alert_filter": {"on": round(a.on, 4), "off": round(a.off, 4), "window": self.alerts_cfg.window,
                                 "min_hits": self.alerts_cfg.min_hits, "min_misses": self.alerts_cfg.min_misses},
                "warnings": []}

    def check(self, data: bytes, name: str) -> CheckResult:
        if not data:
            raise UploadError("the upload is empty: choose an image (PNG, JPEG, ...) or a short video")
        if len(data) > self.limits.max_bytes:
            raise UploadError(f"the upload is {len(data) / 1e6:.1f} MB; the limit is "
                              f"{self.limits.max_bytes / 1e6:.1f} MB", status=413)
        media = sniff(data)
        if media is None:
            raise _not_media(name)
        if media.kind == "image":
            return self._image(self._decode_image(data, media, name), name)
        return self._video(data, media, name)

    @staticmethod
    def _decode_image(data: bytes, media: Media, name: str) -> np.ndarray:
        what = name or "image"
        if not media.width or not media.height:
            raise UploadError(f"{what}: a {media.format.upper()} file whose header gives no image size (damaged or "
                              f"truncated)", status=415)
        _check_image_size(media.width, media.height, what)
        try:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error:
            img = None
        if img is None:
            raise UploadError(f"{what}: a {media.format.upper()} file that cannot be decoded (damaged or truncated)",
                              status=415)
        return img

    def _image(self, img: np.ndarray, name: str) -> CheckResult:
        r = self.detector.detect(img, heatmap=True)
        above = r.score >= self.threshold
        out = self._base("image", name)
        out.update(width=img.shape[1], height=img.shape[0], score=round(r.score, 4), above_threshold=above,
                   decision="polyp suspected" if above else "no polyp suspected",
                   boxes=_boxes(r) if above else [], regions=_boxes(r), heatmap=heatmap_grid(r.heatmap))
        out["warnings"].append("one image: live, an alert also needs "
                               f"{self.alerts_cfg.min_hits} of {self.alerts_cfg.window} frames above the threshold")
        return CheckResult(out, render_preview(img, r.heatmap, out["boxes"], above))

    def _video(self, data: bytes, media: Media, name: str) -> CheckResult:
        with tempfile.NamedTemporaryFile(suffix=media.suffix) as tmp:     # named by its content, not its name
            tmp.write(data)
            tmp.flush()
            cap = cv2.VideoCapture(tmp.name, cv2.CAP_FFMPEG)
            try:
                if not cap.isOpened():
                    raise _not_media(name)
                return self._frames(cap, name)
            finally:
                cap.release()

    def _frames(self, cap: cv2.VideoCapture, name: str) -> CheckResult:
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if 0 < fps <= 1000 else 30.0
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if declared > 0 and declared / fps > self.limits.max_clip_seconds:
            raise UploadError(f"{name}: {declared / fps:.1f} s of video; the limit is "
                              f"{self.limits.max_clip_seconds:g} s", status=413)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w > 0 and h > 0:                      # the container's word, before a frame is decoded
            _check_image_size(w, h, f"{name} frames")
        alerts = AlertFilter.from_config(self.alerts_cfg, self.threshold)
        frames, best, best_img = [], None, None
        while len(frames) < self.limits.max_clip_frames:
            ok, img = cap.read()
            if not ok or img is None:
                break
            if not frames:
                _check_image_size(img.shape[1], img.shape[0], f"{name} frame 0")
            r = self.detector.detect(img)
            state = alerts.update(r.score)
            i = len(frames)
            frames.append({"frame": i, "t_s": round(i / fps, 3), "score": round(r.score, 4),
                           "alert": state.value, "boxes": _boxes(r) if state is AlertState.ON else []})
            if best is None or r.score > frames[best]["score"]:
                best, best_img = i, img
        if not frames:
            raise _not_media(name)
        out = self._base("video", name)
        if declared > len(frames) + 1 and len(frames) < self.limits.max_clip_frames:
            out["warnings"].append(f"the video ended after {len(frames)} of the {declared} frames its header "
                                   f"announces: the file looks truncated; the frames read are checked")
        elif declared > len(frames) + 1:
            out["warnings"].append(f"only the first {len(frames)} of {declared} frames were checked "
                                   f"(web.max_clip_frames)")
        alert_frames = [f["frame"] for f in frames if f["alert"] == "on"]
        episodes = sum(1 for k, f in enumerate(frames)
                       if f["alert"] == "on" and (k == 0 or frames[k - 1]["alert"] != "on"))
        r = self.detector.detect(best_img, heatmap=True)
        out.update(width=best_img.shape[1], height=best_img.shape[0], fps=round(fps, 3), frames_checked=len(frames),
                   summary={"max_score": frames[best]["score"], "max_score_frame": best,
                            "frames_above_threshold": sum(f["score"] >= self.threshold for f in frames),
                            "alert_frames": len(alert_frames), "alert_episodes": episodes,
                            "first_alert_frame": alert_frames[0] if alert_frames else None},
                   decision="polyp suspected (alert raised)" if alert_frames else "no alert raised",
                   preview_frame=best, preview_boxes=_boxes(r) if frames[best]["alert"] == "on" else [],
                   heatmap=heatmap_grid(r.heatmap), frames=frames)
        return CheckResult(out, render_preview(best_img, r.heatmap, out["preview_boxes"], True))

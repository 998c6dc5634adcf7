"""report.html: one self-contained page (plots and thumbnails embedded as data URIs) that opens offline."""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import cv2
import numpy as np

from engines.lab.evaluation.metrics import roc_curve
from stream.detection import Detection
from stream.lab.qa.inputs import ReplayInput
from stream.lab.qa.metrics import alert_episodes


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _timeline(inp: ReplayInput, dets: list[Detection], threshold: float) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 3.6))
    t = np.array([d.frame_index for d in dets]) / inp.fps
    ax.plot(t, [d.score for d in dets], lw=0.8, color="#1f77b4", label="frame score")
    ax.axhline(threshold, color="grey", ls=":", lw=1, label=f"threshold {threshold:.2f}")
    if inp.truth is not None:
        for k, tr in enumerate(inp.truth.polyps):
            for a, b in tr.intervals:
                ax.axvspan(a / inp.fps, (b + 1) / inp.fps, color="#2ca02c", alpha=0.18,
                           label="polyp visible (truth)" if k == 0 and (a, b) == tr.intervals[0] else None)
    for s in inp.sequence_starts:
        ax.axvline(s / inp.fps, color="black", lw=0.6, ls="--")
    for k, e in enumerate(alert_episodes([d for d in dets if not d.error], inp.sequence_starts)):
        ax.plot([e.first / inp.fps, (e.last + 1) / inp.fps], [1.04, 1.04], color="#d62728", lw=5,
                solid_capstyle="butt", label="alert on" if k == 0 else None)
    ax.set_ylim(-0.02, 1.1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=7, ncol=4, frameon=False)
    fig.tight_layout()
    return _png(fig)


def _roc(inp: ReplayInput, dets: list[Detection]) -> str | None:
    if inp.truth is None:
        return None
    ok = [d for d in dets if not d.error]
    y = np.array([bool(inp.truth.frames[d.frame_index]) for d in ok])
    if y.all() or not y.any():
        return None
    fpr, tpr, _ = roc_curve(y, np.array([d.score for d in ok]))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.8, 3.6))
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("frame-level ROC (raw score)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _latency(dets: list[Detection], budget_ms: float) -> str:
    lat = [d.latency_ns("publish") / 1e6 for d in dets if d.latency_ns("publish") is not None]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.hist(lat, bins=50, color="#9467bd")
    ax.axvline(budget_ms, color="#d62728", ls="--", lw=1, label=f"budget {budget_ms:.0f} ms")
    ax.set_xlabel("capture -> publish (ms)")
    ax.set_ylabel("frames")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _read_frame(inp: ReplayInput, index: int) -> np.ndarray | None:
    src = Path(inp.source)
    if src.is_dir():
        from stream.sources import numbered_frames
        files = numbered_frames(src)
        return cv2.imread(str(files[index])) if index < len(files) else None
    if inp.frame_count == 1:
        return cv2.imread(str(src))
    cap = cv2.VideoCapture(str(src), cv2.CAP_FFMPEG)
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, img = cap.read()
    cap.release()
    return img if ok else None


def _thumb(inp: ReplayInput, index: int, det: Detection | None, caption: str, cls: str = "") -> str:
    img = _read_frame(inp, index)
    if img is None:
        return ""
    h, w = img.shape[:2]
    if inp.truth is not None:
        for fp in inp.truth.frames[index]:
            x0, y0, x1, y1 = fp.box
            cv2.rectangle(img, (int(x0 * w), int(y0 * h)), (int(x1 * w), int(y1 * h)), (255, 255, 255), max(1, w // 400))
    if det is not None:
        for b in det.boxes:
            cv2.rectangle(img, (int(b.x0 * w), int(b.y0 * h)), (int(b.x1 * w), int(b.y1 * h)), (0, 255, 0), max(1, w // 300))
    img = cv2.resize(img, (240, int(240 * h / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    uri = "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()
    attr = f' class="{cls}"' if cls else ""
    return f'<figure{attr}><img src="{uri}"><figcaption>{html.escape(caption)}</figcaption></figure>'


MAX_GALLERY = 60


def _episode_gallery(inp: ReplayInput, dets: list[Detection]) -> tuple[str, int]:
    """The procedure record's gallery for a recording: one entry per alert episode, the frame at its peak score
    with the detector's boxes, its start, end, duration and peak score (at most MAX_GALLERY entries)."""
    ok = sorted((d for d in dets if not d.error), key=lambda d: d.frame_index)
    eps = alert_episodes(ok, inp.sequence_starts)
    figs, i = [], 0
    for k, e in enumerate(eps[:MAX_GALLERY], 1):
        while i < len(ok) and ok[i].frame_index < e.first:
            i += 1
        j = i
        while j < len(ok) and ok[j].frame_index <= e.last:
            j += 1
        peak = max(ok[i:j], key=lambda d: d.score)
        kind = ""
        if inp.truth is not None:
            kind = " · polyp in view" if any(inp.truth.frames[f] for f in range(e.first, e.last + 1)
                                             if f < len(inp.truth.frames)) else " · false alarm"
        t0, t1 = e.first / inp.fps, (e.last + 1) / inp.fps
        figs.append(_thumb(inp, peak.frame_index, peak, f"#{k} {t0:.1f}–{t1:.1f} s ({t1 - t0:.1f} s) · peak "
                                                        f"{peak.score:.3f} at frame {peak.frame_index}{kind}", "episode"))
        i = j
    return "".join(figs), len(eps)


def _fmt(v) -> str:
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else html.escape(str(v)))


def write_report(path: Path, inp: ReplayInput, dets: list[Detection], metrics: dict, threshold: float) -> None:
    by_index = {d.frame_index: d for d in dets}
    rows = []
    if "frame_raw" in metrics:
        fr, fa, po = metrics["frame_raw"], metrics["frame_alert"], metrics["polyps"]
        rows += [("Frame sensitivity / specificity (raw score)", f"{_fmt(fr['sensitivity'])} / {_fmt(fr['specificity'])}"),
                 ("Frame AUROC (raw score)", _fmt(fr["auroc"])),
                 ("Frame sensitivity / specificity (alert)", f"{_fmt(fa['sensitivity'])} / {_fmt(fa['specificity'])}"),
                 ("Polyps detected", f"{po['detected']} of {po['count']} ({_fmt(po['detection_rate'])})"),
                 ("Time to first detection, median (ms)", _fmt(po["time_to_detection_ms"]["median"])),
                 ("False alarms per minute (all / ≥0.5 s / ≥1 s)",
                  f"{_fmt(metrics['false_alarms']['per_minute'])} / {_fmt(metrics['false_alarms']['per_minute_ge_0.5s'])}"
                  f" / {_fmt(metrics['false_alarms']['per_minute_ge_1.0s'])}"),
                 ("Box IoU on true-positive frames, median", _fmt(metrics["box_iou_true_positive"]["median"]))]
    rows += [("Alert episodes per minute", _fmt(metrics.get("alert_episodes_per_minute"))),
             ("Frames processed / dropped / over budget",
              f"{metrics['processed']} / {metrics['dropped']} / {metrics['budget_misses']}")]
    lat = metrics["latency_ms"]["capture_to_publish"]
    rows.append(("Capture → publish latency p50 / p95 / p99 / max (ms)",
                 f"{_fmt(lat['p50'])} / {_fmt(lat['p95'])} / {_fmt(lat['p99'])} / {_fmt(lat['max'])}"))
    thumbs = []
    if inp.truth is not None:
        for p in metrics["polyps"]["each"]:
            if not p["detected"]:
                i = p["first_visible"] + p["visible_frames"] // 2
                thumbs.append(_thumb(inp, min(i, inp.frame_count - 1), by_index.get(i), f"missed polyp {p['id']} (frame {i})"))
        for a, b in metrics["false_alarms"]["episodes"][:12]:
            i = (a + b) // 2
            thumbs.append(_thumb(inp, i, by_index.get(i), f"false alarm, frames {a}-{b}"))
    roc = _roc(inp, dets)
    gallery, n_eps = _episode_gallery(inp, dets)
    if inp.truth is None:
        no_roc = "No ROC: this recording has no ground truth (frame and polyp figures need one)."
        no_thumbs = ("No ground truth: missed polyps and false alarms cannot be told apart from true alerts; the alert "
                     "episodes are in the timeline above.")
    else:
        no_roc = "No ROC: every frame of the ground truth is of one class (all polyp or all polyp-free)."
        no_thumbs = "None: every polyp was detected and no alert fell outside a polyp."
    seq_note = (f" · {len(inp.sequence_starts) + 1} recorded sequences (the alert filter starts afresh at each; "
                f"dashed lines)" if inp.sequence_starts else "")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>polypwatch replay: {html.escape(inp.name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#222}} .warn{{color:#a00}} table{{border-collapse:collapse}}
td{{border-bottom:1px solid #ddd;padding:4px 12px}} figure{{display:inline-block;margin:4px}}
figcaption{{font-size:12px}} img{{max-width:100%}} .note{{color:#666;font-size:13px}}</style></head><body>
<h1>Replay: {html.escape(inp.name)}</h1>
{f'<p class="warn"><b>Warning:</b> {html.escape(metrics["warning"])}</p>' if metrics.get("warning") else ''}
<p class="note">Source {html.escape(inp.source)} · {metrics['frames']} frames at {inp.fps:g} fps · model
{html.escape(metrics.get('model_id', ''))} · precision {html.escape(metrics.get('precision', 'fp32'))}
({html.escape(metrics.get('precision_reason', ''))}) · threshold {threshold:.3f} · mode {html.escape(metrics.get('mode', ''))}
{'· ground truth: ' + html.escape(inp.truth.source or 'yes') if inp.truth is not None else '· no ground truth'}{seq_note}.
Research software, not a medical device.</p>
<table>{''.join(f'<tr><td>{html.escape(k)}</td><td>{v}</td></tr>' for k, v in rows)}</table>
<h2>Score over time</h2><img src="{_timeline(inp, dets, threshold)}">
<h2>ROC and latency</h2>{f'<img src="{roc}">' if roc else f'<p class="note">{no_roc}</p>'}
<img src="{_latency(dets, metrics['budget_ms'])}">
<h2>Alert episodes</h2>
<p class="note">One entry per alert episode, as the procedure record keeps them: the frame at the episode's peak score
with the detector's boxes (green){' and the truth (white)' if inp.truth is not None else ''}.
{f'The first {MAX_GALLERY} of {n_eps}.' if n_eps > MAX_GALLERY else ''}</p>
{gallery or '<p class="note">No alert in this recording.</p>'}
<h2>Missed polyps and false alarms</h2>
<p class="note">White: truth box. Green: detector boxes.</p>
{''.join(thumbs) or f'<p class="note">{no_thumbs}</p>'}
<h2>All metrics</h2><pre>{html.escape(json.dumps({k: v for k, v in metrics.items() if k != 'alert_durations_s'}, indent=1))}</pre>
</body></html>"""
    path.write_text(page)

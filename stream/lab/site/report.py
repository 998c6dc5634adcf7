"""report.html of a site check: the verdict, the figures per recording, the site's scores beside the model's own
validation sources (from its commissioning kit, where it ships one), and every alert episode's peak frame with its
boxes, so that the engineer sees what alarms: stool, bubbles, an instrument, or a polyp the report missed."""
from __future__ import annotations

import base64
import html

import cv2
import numpy as np

from stream.lab.qa.report import _plt, _png
from stream.lab.site.check import Alarm, RecordingResult

COLORS = {"fits": "#2ca02c", "commission": "#e69500", "unfit": "#d62728", "undecided": "#777777"}


def _histogram(results: list[RecordingResult], threshold: float, reference: dict) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.4))
    bins = np.linspace(0, 1, 51)
    site = np.concatenate([r.scores for r in results])
    ax.hist(site, bins, density=True, histtype="stepfilled", alpha=0.45, color="#d62728", label="this site (polyp-free)")
    for name, by in sorted(reference.get("sources", {}).items()):
        for key, style in (("negatives", "-"), ("positives", ":")):
            h = by.get(key)
            if h and h.get("n"):
                counts = np.array(h["counts"], float)
                ax.stairs(counts / counts.sum() / (bins[1] - bins[0]), bins, ls=style, lw=1,
                          label=f"{name} {key} (validation)")
    ax.axvline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set_yscale("log")
    ax.set_xlabel("frame score")
    ax.set_ylabel("density")
    ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)
    fig.tight_layout()
    return _png(fig)


def _thumb(a: Alarm) -> str:
    img = a.image.copy()
    h, w = img.shape[:2]
    for b in a.peak.boxes:
        cv2.rectangle(img, (int(b.x0 * w), int(b.y0 * h)), (int(b.x1 * w), int(b.y1 * h)), (0, 255, 0), max(2, w // 240))
    img = cv2.resize(img, (240, max(1, int(240 * h / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    cap = f"{a.recording}: frames {a.first}-{a.last}, peak {a.peak.score:.3f} at frame {a.peak.frame_index}"
    return (f'<figure class="alarm"><img src="data:image/jpeg;base64,{base64.b64encode(buf.tobytes()).decode()}">'
            f"<figcaption>{html.escape(cap)}</figcaption></figure>")


def report_html(s: dict, results: list[RecordingResult], reference: dict, reference_note: str, max_gallery: int) -> str:
    alarms = sorted((a for r in results for a in r.alarms), key=lambda a: -a.peak.score)[:max_gallery]
    rows = "".join(f"<tr><td>{html.escape(r['name'])}</td><td>{r['frames']}</td><td>{r['episodes']}</td>"
                   f"<td>{r['alert_on_share']:.1%}</td><td>{r['specificity']}</td></tr>" for r in s["recordings"])
    few = "" if s["minutes"] >= 1 else (f'<p class="note">Only {s["minutes"] * 60:.0f} s of footage: the per-minute '
                                        f"figure is rough; a few whole procedures say more.</p>")
    color = COLORS[s["verdict"]]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Site check: {html.escape(s['verdict'])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#222}} td,th{{border-bottom:1px solid #ddd;padding:4px 10px;
text-align:left}} table{{border-collapse:collapse}} figure{{display:inline-block;margin:4px;width:240px}}
figcaption{{font-size:12px}} .note{{color:#666;font-size:13px}} .verdict{{font-size:1.6em;font-weight:700;color:{color}}}</style>
</head><body><h1>Site check</h1>
<p class="verdict">{html.escape(s['verdict'].upper())}</p><p>{html.escape(s['reason'])}</p>{few}
<p class="note">Model {html.escape(s['model_id'])} ({html.escape(s.get('precision', ''))}{', site ' + html.escape(s['site'])
if s.get('site') else ''}), threshold {s['threshold']:.3f}, the live alert filter; {s['frames']} frames,
{s['minutes'] * 60:.0f} s of polyp-free footage; {s['episodes']} alert episodes ({s['episodes_per_minute']} per minute),
alert on in {s['alert_on_share']:.1%} of frames. Research software, not a medical device.</p>
<table><tr><th>recording</th><th>frames</th><th>alert episodes</th><th>alert on</th><th>specificity</th></tr>{rows}</table>
<h2>Scores beside the model's own validation sources</h2><p class="note">{html.escape(reference_note)}</p>
<img src="{_histogram(results, s['threshold'], reference)}">
<h2>What alarms ({len(alarms)} of {s['episodes']} alert episodes, highest peak first)</h2>
<p class="note">The frame at each episode's peak score, with the detector's boxes (green). Stool, bubbles, instruments
and light: commission. A polyp: this footage is not polyp-free; leave it out.</p>
{''.join(_thumb(a) for a in alarms) or '<p class="note">No alert: nothing to show.</p>'}
</body></html>"""

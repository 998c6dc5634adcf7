"""The site model's files: the ONNX model (threshold and commissioning record in its metadata), its weights for the
torch backend, its INT8 twin (calibrated on the site's own footage, the stock twin's fp32 layers kept), and the
report (``.commission.json`` and a self-contained ``.commission.html`` with the frames set aside for review)."""
from __future__ import annotations

import base64
import dataclasses
import html
import json
import logging
from pathlib import Path

import cv2
import numpy as np

from engines.runtime.metadata import read_onnx_metadata
from engines.runtime.precision import int8_twin

log = logging.getLogger(__name__)
MAX_REVIEW = 48


def write_site_model(net, meta, report: dict, site, held: list[np.ndarray], out: Path) -> dict:
    from engines.compile.calibration import CalibrationSet
    from engines.compile.export import export_onnx, write_torch_checkpoint
    from engines.compile.quantize import QuantizeOptions, quantize_model
    t = report["site_threshold"]
    new = dataclasses.replace(meta, model_id=f"{meta.model_id}-{report['site']}", threshold=t, scores={},
                              training=meta.training | {"site_adaptation": report})
    report["export_parity"] = export_onnx(net, new, out, samples=site.inputs_sample)
    write_torch_checkpoint(net, new, out.with_suffix(".pt"))
    stock_twin = int8_twin(Path(report.get("model_path", ""))) if report.get("model_path") else None
    exclude = ()
    if stock_twin is not None and stock_twin.is_file():
        exclude = tuple(read_onnx_metadata(stock_twin).quantization.get("kept_fp32_patterns", ()))
    q = quantize_model(QuantizeOptions(out, CalibrationSet("site footage", path=str(site.recs[0].path)),
                                       count=200, exclude=exclude))
    report["int8_twin"] = {"path": q["out"], "check": q["check"]}
    report["files"] = {"model": str(out), "weights": str(out.with_suffix(".pt")), "int8": q["out"]}
    text = json.dumps(report, indent=1)
    out.with_suffix(".commission.json").write_text(text + "\n")
    out.with_suffix(".commission.html").write_text(report_html(report, site))
    log.info("site model %s: threshold %.3f", new.model_id, t)
    return report


def _thumb(img: np.ndarray, caption: str) -> str:
    h, w = img.shape[:2]
    small = cv2.resize(img, (200, max(1, round(200 * h / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    uri = "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode()
    return f'<figure class="review"><img src="{uri}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _row(name: str, fig: dict | None) -> str:
    if fig is None:
        return f"<tr><td>{html.escape(name)}</td><td colspan=4>no threshold meets the rule</td></tr>"
    return (f"<tr><td>{html.escape(name)}</td><td>{fig['threshold']:.3f}</td><td>{fig['specificity']}</td>"
            f"<td>{fig['episodes_per_minute']}</td><td>{fig['alert_on_frames']} of {fig['frames']}</td></tr>")


def _table(title: str, header: tuple[str, ...], rows: list[tuple]) -> str:
    """An h2 and a table; every cell escaped."""
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _per_recording(figs: dict | None) -> str:
    """Each recording (procedure) held out: false-alarm episodes before and after, with their 95% intervals."""
    span = lambda f: f"{f['episodes']} ({f['per_minute_ci95'][0]}–{f['per_minute_ci95'][1]}/min)"   # noqa: E731
    return _table("Each recording held out: alert episodes on its polyp-free frames",
                  ("recording", "minutes", "stock model, its threshold", "commissioned, site threshold"),
                  [(n, v["minutes"], span(v["before"]), span(v["after"])) for n, v in (figs or {}).items()])


def _site_polyps(figs: dict | None) -> str:
    """The site's own reviewed polyps (adapt --records), each procedure held out: found before and after."""
    found = lambda f: (f"{f['cases_found']} / {f['frames_found']}; first frame over the threshold after "   # noqa: E731
                       f"{f.get('time_to_first_frame_s')} s; alert raised on {f.get('cases_alerted')} case(s), after "
                       f"{f.get('time_to_first_alert_s')} s")
    return _table("The site's own polyps (reviewed), each procedure held out",
                  ("procedure", "cases", "frames", "stock: cases / share of frames found; time to the first frame over; live alert and time to it",
                   "commissioned: the same"),
                  [(n, v["cases"], v["frames"], found(v["before"]), found(v["after"])) for n, v in (figs or {}).items()])


def report_html(r: dict, site) -> str:
    figs = []
    for rec, stock, aside in zip(site.recs, site.stock, site.aside):
        for k in np.flatnonzero(aside)[:MAX_REVIEW - len(figs)]:
            figs.append(_thumb(rec.frames[k], f"{rec.name} frame {rec.indices[k]}: stock score {stock[k]:.3f}"))
    trained = "trained on (confirmed polyp-free)" if r["set_aside"]["trained_on"] else \
        "NOT trained on: look at them; if none shows a polyp, run again with --include-set-aside"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Commissioning {html.escape(r['site'])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#222}} td,th{{border-bottom:1px solid #ddd;padding:4px 10px;
text-align:left}} table{{border-collapse:collapse}} figure{{display:inline-block;margin:4px;width:200px}}
figcaption{{font-size:12px}} .note{{color:#666;font-size:13px}}</style></head><body>
<h1>Site {html.escape(r['site'])}: commissioned from {html.escape(r['commissioned_from'])}</h1>
<p class="note">{html.escape(r['date_utc'])} · {html.escape(r['method'])}. Research software, not a medical device:
check the site model with polypwatch replay on annotated local recordings before use.</p>
<h2>The site's polyp-free frames</h2>
<p class="note">Commissioned figures are cross-validated by recording: each recording scored by a model that did not
train on it. Rule: {html.escape(r['rule'])}.</p>
<table><tr><th></th><th>threshold</th><th>specificity</th><th>alert episodes / min</th><th>alert on</th></tr>
{_row('stock model, its own threshold', r['stock']['at_stock_threshold'])}
{_row('stock model, a new threshold only', r['threshold_only'])}
{_row('commissioned (held-out recordings)', r['commissioned_held_out'])}
</table>
<p>Polyp evidence kept back from training (the kit's check frames): sensitivity
{r['stock']['check_positives_sensitivity']} (stock, its threshold) → {r['commissioned_check_positives_sensitivity']}
(site model, threshold {r['site_threshold']:.3f}).</p>
{_per_recording(r.get('per_recording'))}
{_site_polyps(r.get('site_polyps'))}
<h2>Set aside for review: {r['set_aside']['frames']} frames</h2>
<p class="note">The stock model scores these (or their neighbours) at or over its threshold. They were {trained}.</p>
{''.join(figs) or '<p class="note">none</p>'}
<h2>Footage</h2><table><tr><th>recording</th><th>frames used</th><th>size</th><th>sha256</th></tr>
{''.join(f"<tr><td>{html.escape(f['path'])}</td><td>{f['frames_used']}</td><td>{f['size'][0]}x{f['size'][1]}</td><td>{f['sha256'][:16]}…</td></tr>" for f in r['footage'])}
</table></body></html>"""

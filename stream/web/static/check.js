"use strict";
const $ = (id) => document.getElementById(id);
const pw = window.polypwatch = {result: null, error: null, busy: false};

fetch("/api/state").then((r) => r.json()).then((s) => {
  $("model").textContent = s.uploads ? `model: ${s.check_model.model_id} (${s.check_model.precision}), threshold ${s.check_model.threshold.toFixed(3)}`
                                     : "uploads are switched off on this server";
}).catch(() => {});

async function upload(file) {
  pw.busy = true; pw.result = null; pw.error = null;
  $("error").textContent = ""; $("result").hidden = true;
  $("status").textContent = `checking ${file.name} (${(file.size / 1e6).toFixed(2)} MB) ...`;
  const form = new FormData(); form.append("file", file, file.name);
  try {
    const r = await fetch("/api/check", {method: "POST", body: form});
    let body;
    try { body = await r.json(); } catch (e) { body = {error: `the server answered ${r.status} ${r.statusText}`}; }
    if (!r.ok) throw new Error(body.error || `the server answered ${r.status}`);
    show(body);
  } catch (e) {
    pw.error = e.message; $("error").textContent = e.message;
  } finally { $("status").textContent = ""; pw.busy = false; }
}

function show(res) {
  pw.result = res;
  $("decision").textContent = res.decision;
  $("decision").style.color = res.decision.startsWith("polyp") ? "#ffd700" : "#3cc83c";
  const boxes = res.kind === "image" ? res.boxes : res.preview_boxes;
  if (res.kind === "image") {
    $("score").textContent = res.score.toFixed(4);
    $("details").textContent = `${res.width}x${res.height} image`;
  } else {
    const s = res.summary;
    $("score").textContent = `max ${s.max_score.toFixed(4)} (frame ${s.max_score_frame}, shown below)`;
    $("details").textContent = `${res.frames_checked} frames at ${res.fps} fps; above the threshold ` +
      `${s.frames_above_threshold}; alert on ${s.alert_frames} frames in ${s.alert_episodes} episode(s)` +
      (s.first_alert_frame === null ? "" : `, first at frame ${s.first_alert_frame}`);
  }
  $("threshold").textContent = res.threshold.toFixed(4);
  $("precision").textContent = `${res.precision} (${res.precision_reason}), ${res.model_file}`;
  $("boxes").textContent = boxes.length ? boxes.map((b) => `[${b.map((v) => v.toFixed(3)).join(", ")}]`).join(" ")
    : "none (boxes are drawn only where the alert would be on)";
  $("warnings").textContent = res.warnings.join(" ");
  const {preview, ...json} = res;
  $("download").href = URL.createObjectURL(new Blob([JSON.stringify(json, null, 1)], {type: "application/json"}));
  $("preview").src = preview;
  $("result").hidden = false;
}

$("file").onchange = () => { if ($("file").files.length) upload($("file").files[0]); };
const drop = $("drop");
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]); };
pw.upload = upload;

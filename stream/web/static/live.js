// polypwatch live view: draws the newest frame with what the server says may be drawn on it (never a stale box),
// acknowledges each drawn frame (the server sends at most a few unacknowledged ones: a slow page only drops frames),
// and shows OFFLINE by itself when the server goes quiet.
"use strict";
const COLORS = {"ACTIVE": "#3cc83c", "STALE": "#ffa500", "NO SIGNAL": "#ff0000", "OFFLINE": "#ff0000"};
const SILENCE_MS = 1000;          // no message from the server for this long: OFFLINE (connection lost)
const canvas = document.getElementById("feed");
const ctx = canvas.getContext("2d");
const $ = (id) => document.getElementById(id);
const pw = window.polypwatch = {style: null, last: null, verdict: null, display: "CONNECTING", drawn: 0,
                                paused: false, rttMs: null, ageMs: null, connected: false,
                                sound: false, cues: 0, alertShown: false};
let audio = null, lastCueAt = -Infinity;
let bitmap = null, lastMsgAt = 0, ws = null, retryMs = 250, shownTimes = [];

function drawState(label, color, big) {
  const h = canvas.height, scale = Math.max(0.4, h / 1080), pad = Math.round(8 * scale);
  ctx.font = `bold ${Math.round(28 * scale) + 6}px sans-serif`;
  const tw = ctx.measureText(label).width, th = Math.round(28 * scale) + 6;
  ctx.fillStyle = "#000"; ctx.fillRect(pad, pad, tw + 2 * pad, th + 2 * pad);
  ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.strokeRect(pad, pad, tw + 2 * pad, th + 2 * pad);
  ctx.fillStyle = color; ctx.textBaseline = "top"; ctx.fillText(label, 2 * pad, 2 * pad);
  if (big) {
    const text = "DETECTOR " + label;
    ctx.font = `bold ${Math.round(56 * scale) + 10}px sans-serif`;
    const bw = ctx.measureText(text).width, bh = Math.round(56 * scale) + 10;
    const bx = Math.max(0, (canvas.width - bw) / 2), by = canvas.height / 2 - bh / 2;
    ctx.fillStyle = "#000"; ctx.fillRect(bx - pad, by - pad, bw + 2 * pad, bh + 2 * pad);
    ctx.fillStyle = color; ctx.fillText(text, bx, by);
  }
}

function draw() {
  const v = pw.verdict, st = pw.style || {};
  if (bitmap) ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  else { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); }
  const display = pw.connected ? (v ? v.display : "OFFLINE") : "OFFLINE";
  const showAlert = pw.connected && v && v.display === "ACTIVE" && v.alert_shown;
  if (showAlert && bitmap) {
    const w = canvas.width, h = canvas.height, t = Math.max(1, st.box_thickness || 3);
    ctx.strokeStyle = st.box_color || "#00ff00"; ctx.lineWidth = t;
    for (const b of v.boxes) ctx.strokeRect(b[0] * w + t / 2, b[1] * h + t / 2, (b[2] - b[0]) * w - t, (b[3] - b[1]) * h - t);
    const bt = Math.max(4, Math.floor(h / 90));
    ctx.strokeStyle = st.alert_color || "#ffd700"; ctx.lineWidth = bt;
    if (st.alert_style === "corners") {
      const L = h / 8;
      for (const [x, y, dx, dy] of [[0, 0, 1, 1], [w, 0, -1, 1], [0, h, 1, -1], [w, h, -1, -1]]) {
        ctx.beginPath(); ctx.moveTo(x + dx * L, y + dy * bt / 2); ctx.lineTo(x + dx * bt / 2, y + dy * bt / 2);
        ctx.lineTo(x + dx * bt / 2, y + dy * L); ctx.stroke();
      }
    } else ctx.strokeRect(bt / 2, bt / 2, w - bt, h - bt);
  }
  drawState(pw.paused ? display + " (PAUSED)" : display, COLORS[display] || "#f00",
            display === "OFFLINE" || display === "NO SIGNAL");
  if (showAlert && !pw.alertShown) cue();          // the start of an alert episode on screen
  pw.alertShown = !!showAlert;
  pw.display = display;
  const s = $("state"); s.textContent = display + (pw.paused ? " (paused)" : "");
  s.style.color = s.style.borderColor = COLORS[display] || "#f00";
}

// A short cue at the start of an alert episode: off until the user switches it on, at most one per
// style.sound_min_interval_s, and never while the detector is STALE, NO SIGNAL or OFFLINE (only ACTIVE alerts cue).
function cue() {
  const minMs = 1000 * ((pw.style && pw.style.sound_min_interval_s) || 3);
  const now = performance.now();
  if (!pw.sound || now - lastCueAt < minMs) return;
  lastCueAt = now; pw.cues += 1;
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = 880; gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.25);
    osc.connect(gain).connect(audio.destination); osc.start(); osc.stop(audio.currentTime + 0.25);
  } catch (e) { /* no audio device: the cue is counted, the box still shows the alert */ }
}

// The picture fills the space it has at its own aspect ratio (SD and 1080p alike); the canvas keeps the frame's
// pixels, so boxes drawn on it stay registered to the image at every size.
function fit() {
  const view = $("view"), full = document.fullscreenElement === view;
  const availW = full ? window.innerWidth : view.clientWidth;
  const top = canvas.getBoundingClientRect().top + window.scrollY;
  const availH = full ? window.innerHeight : Math.max(120, window.innerHeight - top - 16);
  const s = Math.min(availW / canvas.width, availH / canvas.height);
  canvas.style.width = `${Math.floor(canvas.width * s)}px`; canvas.style.height = `${Math.floor(canvas.height * s)}px`;
}

// The current procedure's alert episodes (record.dir): the newest first, each the frame at the episode's peak.
const STRIP_MAX = 8;
let stripKey = "";
async function strip() {
  const st = (pw.last && pw.last.status) || pw.status || {};
  if (!st.procedure) { $("strip").hidden = true; return; }
  let d;
  try {
    const r = await fetch(`/api/procedures/current?last=${STRIP_MAX}`);
    if (!r.ok) return;
    d = await r.json();
  } catch (e) { return; }
  pw.procedure = d;
  $("strip").hidden = false;
  $("gallery").href = "/procedures/" + encodeURIComponent(d.name);
  $("recnote").textContent = (st.record || "").startsWith("error") ? st.record : `${d.episodes} alert episodes`;
  const key = d.name + ":" + d.episodes;
  if (key === stripKey) return;
  stripKey = key;
  const box = $("thumbs"); box.textContent = "";
  for (const e of d.gallery.slice(-STRIP_MAX).reverse()) {
    const a = document.createElement("a"), img = document.createElement("img"), cap = document.createElement("span");
    a.href = img.src = `/procedures/files/${encodeURIComponent(d.name)}/${encodeURIComponent(e.image)}`;
    a.target = "_blank"; img.alt = `alert episode ${e.episode}`;
    cap.textContent = `${Math.floor(e.start_s / 60)}:${(e.start_s % 60).toFixed(0).padStart(2, "0")} · ${e.duration_s.toFixed(1)} s · ${e.peak_score.toFixed(2)}`;
    a.append(img, cap); box.append(a);
  }
}

function fmt(x, unit) { return x === null || x === undefined ? "–" : `${Number(x).toFixed(1)}${unit || ""}`; }

function panel(h) {
  const st = h.status || {}, c = st.capture_to_publish_ms || {};
  if (h.status) pw.status = h.status;
  $("model").textContent = st.model_id || "–"; $("site").textContent = st.site || (st.model_id ? "none (shipped model)" : "–"); $("backend").textContent = st.backend || "–";
  $("source").textContent = st.source || "–"; $("fps").textContent = fmt(st.fps);
  $("dropped").textContent = st.dropped ?? "–";
  $("c2pp").textContent = c.p50 !== undefined ? `${fmt(c.p50)} / ${fmt(c.p99, " ms")}` : "–";
  if (h.viewer) $("vdropped").textContent = h.viewer.dropped;
  const v = h.verdict || {};
  $("score").textContent = v.score === null || v.score === undefined ? "–" : v.score.toFixed(3);
  let note = "";
  if (!pw.connected) note = "no connection to the polypwatch web server";
  else if (st.state === null) note = "no heartbeat from the pipeline yet";
  else if (pw.style && st.heartbeat_age_ms > pw.style.heartbeat_timeout_ms)
    note = `no heartbeat from the pipeline for ${(st.heartbeat_age_ms / 1000).toFixed(1)} s: the figures below are the last ones received`;
  else if (st.state === "stopped" || st.state === "error") note = `the pipeline has ${st.state}` + (st.message ? `: ${st.message}` : "");
  else if (st.message) note = st.message;
  else if (!bitmap && st.state === "running") note = "no video: run the pipeline with publisher.send_frames: true";
  $("note").textContent = note;
  document.querySelector("#panel table").style.opacity = pw.display === "ACTIVE" || pw.display === "STALE" ? 1 : 0.45;
}

async function onFrame(buf, recvAt) {
  const dv = new DataView(buf), n = dv.getUint32(0);
  const h = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  const blob = new Blob([new Uint8Array(buf, 4 + n)], {type: "image/jpeg"});
  let bmp;
  try { bmp = await createImageBitmap(blob); } catch (e) { send({type: "ack", seq: h.seq}); return; }
  if (!pw.paused) {
    if (canvas.width !== h.width || canvas.height !== h.height) { canvas.width = h.width; canvas.height = h.height; fit(); }
    if (bitmap) bitmap.close();
    bitmap = bmp; pw.last = h; pw.verdict = h.verdict;
    draw(); pw.drawn += 1;
    const now = performance.now();
    shownTimes.push(now); while (shownTimes.length && now - shownTimes[0] > 2000) shownTimes.shift();
    $("shown").textContent = `${pw.drawn} / ${(shownTimes.length / 2).toFixed(1)}`;
    $("c2p").textContent = fmt(h.capture_to_publish_ms, " ms");
    pw.ageMs = h.age_at_send_ms === null ? null : h.age_at_send_ms + (pw.rttMs || 0) / 2 + (now - recvAt);
    $("age").textContent = pw.ageMs === null ? "n/a (pipeline on another host)" : fmt(pw.ageMs, " ms");
    panel(h);
  } else bmp.close();
  send({type: "ack", seq: h.seq});
}

function onText(text) {
  const m = JSON.parse(text);
  if (m.type === "hello") { pw.style = m.style; return; }
  if (m.type === "pong") { pw.rttMs = performance.now() - m.t; return; }
  if (m.type === "state" && !pw.paused) {
    pw.verdict = m.verdict;          // the last frame re-judged now: a box that went stale disappears
    draw(); panel(m);
  }
}

function send(obj) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj)); }

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  ws = new WebSocket(url); ws.binaryType = "arraybuffer";
  ws.onopen = () => { pw.connected = true; retryMs = 250; lastMsgAt = performance.now(); };
  ws.onmessage = (ev) => {
    const at = performance.now(); lastMsgAt = at;
    pw.connected = true;
    if (typeof ev.data === "string") onText(ev.data); else onFrame(ev.data, at);
  };
  ws.onclose = () => {
    pw.connected = false; draw(); panel({});
    setTimeout(connect, retryMs); retryMs = Math.min(retryMs * 2, 4000);
  };
}

setInterval(() => send({type: "ping", t: performance.now()}), 1000);
setInterval(strip, 3000);
setInterval(() => {                  // the page's own watchdog: silence never looks like "no polyp"
  if (pw.connected && performance.now() - lastMsgAt > SILENCE_MS) { pw.connected = false; draw(); panel({}); }
}, 100);
$("pause").onclick = () => { pw.paused = !pw.paused; $("pause").textContent = pw.paused ? "resume" : "pause"; draw(); };
$("sound").checked = false;
$("sound").onchange = () => { pw.sound = $("sound").checked; if (pw.sound && !audio) { try { audio = new AudioContext(); } catch (e) {} } };
$("fullscreen").onclick = () => document.fullscreenElement ? document.exitFullscreen() : $("view").requestFullscreen();
window.addEventListener("resize", fit);
document.addEventListener("fullscreenchange", fit);
pw.fit = fit;
pw.strip = strip;
pw.pause = () => { pw.paused = true; draw(); };
pw.resume = () => { pw.paused = false; draw(); };
fit();
draw();
connect();

// "polyp here": the detector missed it or was late. The server keeps the mark in the procedure being recorded
// (POST /api/mark, which needs the access token); the answer says what happened, never silently nothing.
async function markPolyp() {
  const note = document.getElementById('marknote');
  try {
    const r = await fetch('/api/mark?by=web', {method: 'POST'});
    const body = await r.json();
    note.textContent = r.ok ? `mark ${body.mark} kept (frame ${body.frame_index})` : `not kept: ${body.error}`;
    note.style.color = r.ok ? '#9f9' : '#f66';
    window.polypwatchLastMark = {ok: r.ok, body};
  } catch (e) {
    note.textContent = `not kept: ${e}`;
    note.style.color = '#f66';
  }
}
document.getElementById('mark').addEventListener('click', markPolyp);
document.addEventListener('keydown', (e) => { if (e.key === 'm' && !e.repeat && e.target.tagName !== 'INPUT') markPolyp(); });

// The review page: one card per case (alert episode or mark): a strip of footage frames, a large view of the chosen
// frame where the polyp's place is clicked (a point) or dragged (a box), three answers, and who answered what.
'use strict';
const NAME = decodeURIComponent(location.pathname.split('/')[2]);
const state = {data: null, chosen: {}, boxes: {}};
window.polypwatchReview = state;
const reviewer = document.getElementById('reviewer');
reviewer.value = localStorage.getItem('polypwatch-reviewer') || '';
reviewer.addEventListener('change', () => localStorage.setItem('polypwatch-reviewer', reviewer.value.trim()));

function el(tag, attrs = {}, text = '') {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

function frameUrl(f) { return `/procedures/files/${encodeURIComponent(NAME)}/footage/${f.file}`; }

function drawBox(canvas, img, box) {
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  if (!box) return;
  ctx.strokeStyle = '#0f0'; ctx.lineWidth = 2;
  const [x0, y0, x1, y1] = box;
  const w = Math.max(6, (x1 - x0) * canvas.width), h = Math.max(6, (y1 - y0) * canvas.height);
  const cx = x0 * canvas.width - (x1 === x0 ? 3 : 0), cy = y0 * canvas.height - (y1 === y0 ? 3 : 0);
  ctx.strokeRect(cx, cy, w, h);
}

function choose(c, f, big) {
  state.chosen[c.id] = f.frame_index;
  delete state.boxes[c.id];
  const img = new Image();
  img.onload = () => { big.width = img.naturalWidth; big.height = img.naturalHeight; big._img = img; drawBox(big, img, null); };
  img.src = frameUrl(f);
  for (const t of document.querySelectorAll(`[data-case="${c.id}"] .strip img`)) {
    t.classList.toggle('chosen', Number(t.dataset.frame) === f.frame_index);
  }
}

function bindDrag(c, big) {
  let start = null;
  const pos = (e) => { const r = big.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))]; };
  big.addEventListener('mousedown', (e) => { if (big._img) start = pos(e); });
  big.addEventListener('mouseup', (e) => {
    if (!start) return;
    const end = pos(e);
    const box = [Math.min(start[0], end[0]), Math.min(start[1], end[1]), Math.max(start[0], end[0]), Math.max(start[1], end[1])]
      .map((v) => Math.round(v * 10000) / 10000);
    state.boxes[c.id] = box;
    drawBox(big, big._img, box);
    start = null;
  });
}

async function answer(c, value, note) {
  const name = reviewer.value.trim();
  if (!name) { note.textContent = 'give your name first'; return; }
  const body = {case: c.id, answer: value, reviewer: name};
  if (state.chosen[c.id] !== undefined) body.frame_index = state.chosen[c.id];
  if (state.boxes[c.id]) body.box = state.boxes[c.id];
  const r = await fetch(`/api/procedures/${encodeURIComponent(NAME)}/review`, {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const out = await r.json();
  note.textContent = r.ok ? `kept: ${out.answer} by ${out.reviewer}` : `not kept: ${out.error}`;
  note.style.color = r.ok ? '#9f9' : '#f66';
  state.last = {ok: r.ok, out};
  if (r.ok) await load();
}

function card(c, answers) {
  const div = el('div', {class: 'case', 'data-case': c.id});
  const title = c.kind === 'episode'
    ? `Alert episode ${c.id.split('-')[1]}: frames ${c.first_frame}–${c.last_frame}, peak ${c.peak_score}`
    : `Mark ${c.id.split('-')[1]} (${c.by}, ${c.utc}): around frame ${c.mark_frame}`;
  div.appendChild(el('h2', {}, title));
  const strip = el('div', {class: 'strip'});
  const big = el('canvas', {class: 'big-frame', width: 320, height: 180});
  for (const f of c.frames) {
    const t = el('img', {src: frameUrl(f), 'data-frame': f.frame_index, title: `frame ${f.frame_index} (${f.t_s} s)`, loading: 'lazy'});
    t.addEventListener('click', () => choose(c, f, big));
    strip.appendChild(t);
  }
  if (!c.frames.length) strip.appendChild(el('p', {}, 'no footage kept for this case (record.footage was off)'));
  div.appendChild(strip);
  div.appendChild(big);
  bindDrag(c, big);
  const buttons = el('p');
  const note = el('span', {class: 'note'});
  for (const [value, label] of [['polyp', 'polyp'], ['not_polyp', 'not a polyp'], ['unsure', 'unsure']]) {
    const b = el('button', {'data-answer': value}, label);
    b.addEventListener('click', () => answer(c, value, note));
    buttons.appendChild(b);
    buttons.appendChild(document.createTextNode(' '));
  }
  buttons.appendChild(note);
  div.appendChild(buttons);
  const who = el('ul', {class: 'answers'});
  for (const a of answers.filter((a) => a.case === c.id)) {
    who.appendChild(el('li', {}, `${a.utc}: ${a.reviewer} — ${a.answer.replace('_', ' ')}` +
      (a.frame_index !== undefined ? ` (frame ${a.frame_index}${a.box ? ', place marked' : ''})` : '')));
  }
  div.appendChild(who);
  if (c.frames.length) choose(c, c.frames[Math.floor(c.frames.length / 2)], big);
  return div;
}

async function load() {
  const r = await fetch(`/api/procedures/${encodeURIComponent(NAME)}/review`);
  const data = await r.json();
  state.data = data;
  document.getElementById('title').textContent = `Review of procedure ${data.name}` + (data.finished ? '' : ' (still recording)');
  const err = document.getElementById('error');
  err.textContent = data.edited_at_line ? `review.jsonl was edited outside polypwatch at line ${data.edited_at_line}: answers from there are not used, and no more can be added` : '';
  const root = document.getElementById('cases');
  const keep = {...state.chosen};
  root.replaceChildren(...data.cases.map((c) => card(c, data.answers)));
  for (const c of data.cases) {
    const f = c.frames.find((f) => f.frame_index === keep[c.id]);
    if (f) choose(c, f, document.querySelector(`[data-case="${c.id}"] canvas`));
  }
  state.loaded = (state.loaded || 0) + 1;
}
load();

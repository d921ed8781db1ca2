// motif Studio page: plain JS, no build. Talks to studio/server.py's JSON API:
// GET /api/options + /api/models to fill the controls, POST /api/generate with the form,
// then polls /api/jobs/<id> (progress after one second) and draws the batch's samples.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { options: null, models: [], batch: null, busy: false, store: "" };
const PRIMER_HINTS = {
  none: "",
  notes: "Note names, each 2 sixteenth steps unless :n is given, r for a rest: C4 E4 G4:4 r C5",
  events: "Magenta events: pitch = note on, -2 = hold, -1 = note off: [60, -2, 62, -2, 64, -2, -2, -2]",
  chord: "Pitches held for a quarter note (polyphony, performance): C4 E4 G4 or [60, 64, 67]",
  midi: "",
  sample: "",
};
const PRIMER_PLACEHOLDERS = {
  notes: "C4 E4 G4:4 r C5", events: "[60, -2, 60, -2, 67, -2, 67, -2]", chord: "C4 E4 G4",
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function getJSON(url, init) {
  const res = await fetch(url, init);
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  return { ok: res.ok, status: res.status, body };
}

// ------------------------------------------------------------------ errors next to controls

function clearErrors() {
  document.querySelectorAll(".err").forEach((e) => { e.textContent = ""; });
  document.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
}

function showError(err) {
  const field = (err && err.field) || "form";
  const message = (err && err.message) || "Something went wrong.";
  let box = $("err-" + field);
  if (field === "render_chords" || field === "steps_per_chord") box = $("err-" + field) || $("err-chords");
  if (!box || box.closest("[hidden]")) box = $("err-form");
  box.textContent = message;
  const input = document.querySelector(`[name="${field}"]`);
  if (input) { input.classList.add("invalid"); }
  box.scrollIntoView({ block: "nearest" });
}

// ------------------------------------------------------------------ models

function fmt(x, digits = 3) {
  return typeof x === "number" && isFinite(x) ? x.toFixed(digits) : "–";
}

function selectedModel() {
  return state.models.find((m) => m.name === $("model").value) || null;
}

function selectedVersion() {
  const m = selectedModel();
  if (!m) return null;
  const ref = $("version").value;
  if (/^\d+$/.test(ref)) return m.versions.find((v) => String(v.version) === ref) || null;
  return m.versions.find((v) => v.aliases.includes(ref)) || null;
}

function fillModels() {
  const family = $("family-filter").value;
  const sel = $("model");
  const current = sel.value;
  sel.replaceChildren();
  const families = [...new Set(state.models.map((m) => m.family || "other"))];
  for (const fam of families) {
    if (family && fam !== family) continue;
    const group = el("optgroup", { label: fam });
    for (const m of state.models.filter((x) => (x.family || "other") === fam)) {
      group.append(el("option", { value: m.name, text: m.name, disabled: !m.family }));
    }
    sel.append(group);
  }
  if ([...sel.options].some((o) => o.value === current)) sel.value = current;
  fillVersions();
}

function fillVersions() {
  // each registered version once, newest first, its aliases beside it; the champion is picked
  const m = selectedModel();
  const sel = $("version");
  sel.replaceChildren();
  if (m) {
    const versions = [...m.versions].sort((a, b) => b.version - a.version);
    for (const v of versions) {
      const aliases = [...v.aliases].sort((a, b) => (a === "champion" ? -1 : b === "champion" ? 1 : a.localeCompare(b)));
      sel.append(el("option", { value: String(v.version), text: `v${v.version}${aliases.length ? " (" + aliases.join(", ") + ")" : ""}` }));
    }
    const champ = versions.find((v) => v.aliases.includes("champion")) || versions[0];
    if (champ) sel.value = String(champ.version);
  }
  showModelInfo();
  applyFamily();
}

function showModelInfo() {
  // a musician's summary up front; the training facts one click away in <details>
  const m = selectedModel();
  const v = selectedVersion();
  const box = $("model-info");
  box.replaceChildren();
  if (!m || !v) return;
  const q = v.quality || { verdict: "unknown", text: "Not evaluated yet." };
  box.append(el("p", { class: "plain", text: m.plain || m.description || "" }));
  if (m.good_for) box.append(el("p", {}, "Good for: ", el("b", { text: m.good_for })));
  if (m.range) box.append(el("p", {}, "Plays notes from ", el("b", { text: m.range })));
  box.append(el("p", { class: `verdict verdict-${q.verdict}` }, "Quality: ", el("span", { text: q.text })));
  const mt = v.metrics || {};
  const facts = [
    ["Family", m.family || "?"],
    ["Encoding", m.description || "?"],
    ["Eval loss", fmt(mt.eval_loss)],
    ["Eval perplexity", fmt(mt.eval_perplexity, 2)],
    ["Eval accuracy", typeof mt.eval_accuracy === "number" ? (100 * mt.eval_accuracy).toFixed(1) + "%" : "–"],
    ["Trained on", v.example_set || "?"],
    ["Data version", v.data_version || "?"],
    ["Version", `v${v.version}${v.aliases.length ? " (" + v.aliases.join(", ") + ")" : ""}`],
    ["Champion decision", v.champion_decision || "–"],
    ["Run", v.run_id || "?"],
    ["MLflow store", state.store || "?"],
  ];
  const dl = el("dl");
  for (const [k, val] of facts) dl.append(el("dt", { text: k }), el("dd", { text: val }));
  box.append(el("details", { id: "model-details" }, el("summary", { text: "Technical details" }), dl));
}

function applyFamily() {
  const m = selectedModel();
  const family = m ? m.family : null;
  document.querySelectorAll("fieldset[data-family]").forEach((fs) => {
    fs.hidden = fs.dataset.family !== family;
  });
  // What the family's models take comes from the server (the family's REQUEST_FIELDS).
  const d = state.options && family ? state.options.defaults[family] : null;
  const takes = (field) => Boolean(d && d.fields.includes(field));
  const chordOpt = $("primer_type").querySelector('option[value="chord"]');
  chordOpt.hidden = chordOpt.disabled = !takes("primer_pitches");
  if (chordOpt.disabled && $("primer_type").value === "chord") $("primer_type").value = "notes";
  if (takes("notes_per_second") || takes("pitch_class_histogram")) {
    $("density-box").hidden = !m.density;
    $("histogram-box").hidden = !m.histogram;
    $("no-controls").hidden = m.density || m.histogram;
  }
  const unit = d ? d.unit : "bars";
  $("length-label").textContent = `Length (${unit})`;
  $("length").max = unit === "seconds" ? state.options.limits.max_seconds : (state.options ? state.options.limits.max_bars : 64);
  $("length").placeholder = d && d.length ? `${d.length} ${unit}` : takes("backing_chords") ? "the chords' length" : "";
  applyPrimer();
}

function applyPrimer() {
  const kind = $("primer_type").value;
  $("primer-text-label").hidden = !(kind in PRIMER_PLACEHOLDERS);
  $("primer_text").placeholder = PRIMER_PLACEHOLDERS[kind] || "";
  $("primer-hint").textContent = PRIMER_HINTS[kind] || "";
  $("primer-midi-label").hidden = kind !== "midi";
  const sampleOpt = $("primer_type").querySelector('option[value="sample"]');
  sampleOpt.hidden = kind !== "sample";
  $("primer-sample-note").hidden = kind !== "sample";
  const m = selectedModel();
  $("primer-range").textContent = m && m.range && kind !== "none" ? `This model plays notes from ${m.range}.` : "";
}

function useAsPrimer(s) {
  // the sample's MIDI, kept by the server, becomes the next request's primer
  $("primer_sample").value = s.token;
  $("primer_type").value = "sample";
  $("primer-sample-note").textContent = `Continuing sample ${s.index} (${s.filename}). Set the length longer than ${s.seconds.toFixed(1)} s of music, or pick another primer.`;
  applyPrimer();
  $("primer_type").scrollIntoView({ block: "center" });
}

function applyHistogramMode() {
  const mode = document.querySelector('input[name="histogram_mode"]:checked').value;
  $("sliders").hidden = mode !== "sliders";
  $("histogram-key-label").hidden = mode !== "key";
}

// ------------------------------------------------------------------ generating

function formData() {
  const fd = new FormData($("form"));
  if ($("primer_type").value !== "midi") fd.delete("primer_midi");
  return fd;
}

function setBusy(busy) {
  state.busy = busy;
  $("generate").disabled = busy;
  $("regenerate-all").disabled = busy;
  document.querySelectorAll(".sample button").forEach((b) => { b.disabled = busy; });
}

function showProgress(job) {
  const bar = $("progress-bar");
  const words = { queued: "waiting", loading: "loading the model", generating: "generating",
    rendering: "rendering audio and piano rolls" };
  if (job.progress === null || job.progress === undefined) bar.removeAttribute("value");
  else bar.value = job.progress;
  let text = words[job.status] || job.status;
  if (job.status === "generating") {
    text += job.total_steps ? ` ${job.steps} / ${job.total_steps} steps`
      : ` ${job.steps} events, ${job.rows_done} / ${job.rows} samples finished`;
  }
  $("progress-text").textContent = text;
}

async function runJob(start) {
  clearErrors();
  setBusy(true);
  const shownAt = Date.now() + 1000;  // only generations longer than a second show progress
  try {
    const first = await start();
    if (!first.ok) { showError(first.body && first.body.error); return null; }
    let job = first.body;
    while (job.status !== "done" && job.status !== "error") {
      if (Date.now() >= shownAt) { $("progress").hidden = false; showProgress(job); }
      await new Promise((r) => setTimeout(r, 250));
      const next = await getJSON(`/api/jobs/${job.id}`);
      if (!next.ok) { showError(next.body && next.body.error); return null; }
      job = next.body;
    }
    if (job.status === "error") { showError(job.error); return null; }
    return job;
  } catch (e) {
    showError({ field: "form", message: "The Studio server did not answer; is it still running?" });
    return null;
  } finally {
    $("progress").hidden = true;
    setBusy(false);
  }
}

async function generate(ev) {
  ev.preventDefault();
  if (state.busy) return;
  const job = await runJob(() => getJSON("/api/generate", { method: "POST", body: formData() }));
  if (job) showBatch(job.batch);
}

async function regenerateAll() {
  if (!state.batch || state.busy) return;
  const job = await runJob(() => getJSON(`/api/batches/${state.batch.id}/regenerate`, { method: "POST" }));
  if (job) showBatch(job.batch);
}

async function regenerateOne(index) {
  if (!state.batch || state.busy) return;
  const card = document.querySelector(`.sample[data-index="${index}"]`);
  if (card) card.classList.add("busy");
  const job = await runJob(() => getJSON(`/api/batches/${state.batch.id}/samples/${index}/regenerate`, { method: "POST" }));
  if (card) card.classList.remove("busy");
  if (job) showBatch(job.batch);
}

// ------------------------------------------------------------------ results

function sampleCard(s, batch) {
  const notes = s.num_chord_notes ? `${s.num_notes} melody notes + ${s.num_chord_notes} chord notes` : `${s.num_notes} notes`;
  const meta = `${notes} · ${s.seconds.toFixed(1)} s long · log-likelihood ${s.log_likelihood.toFixed(1)} · seed ${s.seed} row ${s.row}`;
  const img = el("div", { class: "roll-box" },
    el("img", { class: "roll", src: s.urls.png, alt: `piano roll of sample ${s.index}`, loading: "eager" }));
  const bar = el("div", { class: "bar" });
  if (s.urls.wav) bar.append(el("audio", { controls: true, preload: "auto", src: s.urls.wav }));
  bar.append(el("a", { class: "midi", href: s.urls.midi, download: s.filename + ".mid", text: "Download MIDI" }));
  bar.append(el("a", { class: "json", href: s.urls.json, download: s.filename + ".json", text: "details (JSON)" }));
  const regen = el("button", { type: "button", class: "secondary regen", text: "Regenerate" });
  regen.addEventListener("click", () => regenerateOne(s.index));
  const reuse = el("button", { type: "button", class: "secondary use-primer", text: "Use as primer" });
  reuse.addEventListener("click", () => useAsPrimer(s));
  bar.append(regen, reuse);
  return el("article", { class: "sample", "data-index": String(s.index), "data-token": s.token },
    el("h3", {}, `Sample ${s.index} `, el("span", { class: "muted fname", text: s.filename })),
    el("div", { class: "meta", text: meta }), img, bar);
}

function showBatch(batch) {
  if (!batch) return;
  state.batch = batch;
  $("results-empty").hidden = true;
  $("results-head").hidden = false;
  const st = batch.settings || {};
  const version = (batch.model.match(/\/(\d+)$/) || [])[1];
  const n = batch.samples.length;
  $("results-title").textContent = `${n} sample${n === 1 ? "" : "s"} from ${batch.variant}${version ? " v" + version : ""}`;
  $("results-sub").textContent = `seed ${st.seed} · temperature ${st.temperature}`;
  $("download-zip").href = `/api/batches/${batch.id}/zip`;
  $("samples").replaceChildren(...batch.samples.map((s) => sampleCard(s, batch)));
  if (st.seed !== undefined && $("seed").value === "") $("seed").placeholder = `random (last: ${st.seed})`;
}

// ------------------------------------------------------------------ start-up

function buildSliders(names) {
  const box = $("sliders");
  box.replaceChildren();
  names.forEach((n, i) => {
    const out = el("output", { text: "1" });
    const input = el("input", { type: "range", name: "histogram", min: "0", max: "4", step: "0.5", value: "1", "aria-label": `weight of ${n}`, id: `hist-${i}` });
    input.addEventListener("input", () => { out.textContent = input.value; });
    box.append(el("label", { class: "pc" }, input, out, n));
  });
}

async function init() {
  const [opts, cat] = await Promise.all([getJSON("/api/options"), getJSON("/api/models")]);
  state.options = opts.body;
  buildSliders(state.options.pitch_classes);
  for (const s of state.options.scales) $("scale").append(el("option", { value: s, text: s.replace(/_/g, " ") }));
  $("num_outputs").max = state.options.limits.max_outputs;
  $("chords").placeholder = state.options.default_chords;
  const catalogue = cat.body || { models: [], error: "The model list could not be loaded." };
  state.models = catalogue.models || [];
  state.store = catalogue.tracking_uri || "";
  for (const fam of [...new Set(state.models.map((m) => m.family).filter(Boolean))]) {
    $("family-filter").append(el("option", { value: fam, text: fam }));
  }
  if (catalogue.error) showError({ field: "model", message: catalogue.error });
  else if (!state.models.length) showError({ field: "model", message: "No models are registered yet; train one first." });
  fillModels();
  if (catalogue.default) { $("model").value = catalogue.default; fillVersions(); }
  applyHistogramMode();
  $("family-filter").addEventListener("change", fillModels);
  $("model").addEventListener("change", fillVersions);
  $("version").addEventListener("change", showModelInfo);
  $("primer_type").addEventListener("change", applyPrimer);
  document.querySelectorAll('input[name="histogram_mode"]').forEach((r) => r.addEventListener("change", applyHistogramMode));
  $("form").addEventListener("submit", generate);
  $("regenerate-all").addEventListener("click", regenerateAll);
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", () => {
  init().catch(() => showError({ field: "form", message: "The Studio could not start; reload the page." }));
});

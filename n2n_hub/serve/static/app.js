// The n2n-hub page: no build step, no CDN. Talks to the JSON API of the same server.
"use strict";
const $ = (id) => document.getElementById(id);
let pairs = [];
let files = [];
let running = 0;

function showError(msg) { const e = $("error"); e.textContent = msg; e.hidden = !msg; }

async function api(path, options) {
  const r = await fetch(path, options);
  const type = r.headers.get("content-type") || "";
  const body = type.includes("json") ? await r.json() : await r.text();
  if (!r.ok) {
    const msg = (body && body.error) || String(body) || r.statusText;
    const retry = r.headers.get("Retry-After");
    throw new Error(`${r.status}: ${msg}${retry ? ` (retry after ${retry} s)` : ""}`);
  }
  return body;
}

function current() { return pairs.find((p) => p.pair === $("pair").value); }

function onPairChange() {
  const p = current();
  const image = p && p.source_domain === "image";
  $("texts-box").hidden = image;
  $("images-box").hidden = !image;
  $("pair-info").textContent = p ? `${p.source} → ${p.target} · ${p.state}` +
    (p.temperature !== undefined ? ` · default temperature ${p.temperature}` : "") + (p.error ? ` · ${p.error}` : "") : "";
}

async function loadPairs() {
  try {
    const data = await api("/v1/pairs");
    pairs = data.served;
    const sel = $("pair");
    const keep = sel.value;
    sel.replaceChildren(...pairs.map((p) => {
      const o = document.createElement("option");
      o.value = p.pair; o.textContent = (p.name ? `${p.name}: ` : "") + p.pair + (p.state === "ready" ? "" : ` (${p.state})`);
      o.disabled = p.state === "failed";
      return o;
    }));
    if (keep && pairs.some((p) => p.pair === keep)) sel.value = keep;
    $("status").textContent = `${pairs.filter((p) => p.state === "ready").length} of ${pairs.length} pairs ready`;
    onPairChange();
    if (pairs.some((p) => p.state === "loading")) setTimeout(loadPairs, 2000);
  } catch (err) { showError(String(err.message || err)); $("status").textContent = "cannot list pairs"; }
}

function setFiles(list) {
  files = Array.from(list).filter((f) => f.type.startsWith("image/") || /\.(png|jpe?g|gif|bmp|webp)$/i.test(f.name));
  $("file-list").textContent = files.length ? files.map((f) => f.name).join(", ") : "";
}

async function submit(ev) {
  ev.preventDefault();
  showError("");
  const p = current();
  if (!p) { showError("no pair selected"); return; }
  const [source, target] = [p.source, p.target];
  const fields = { source, target, n: $("n").value || "1", format: "json" };
  if ($("temperature").value !== "") fields.temperature = $("temperature").value;
  if ($("seed").value !== "") fields.seed = $("seed").value;
  let request;
  if (p.source_domain === "image") {
    if (!files.length) { showError("drop or choose at least one image"); return; }
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    for (const f of files) form.append("images", f, f.name);
    request = { method: "POST", body: form };
  } else {
    const texts = $("texts").value.split("\n").map((t) => t.trim()).filter(Boolean);
    if (!texts.length) { showError("type at least one prompt"); return; }
    const body = { ...fields, texts, n: Number(fields.n) };
    if (fields.temperature !== undefined) body.temperature = Number(fields.temperature);
    if (fields.seed !== undefined) body.seed = Number(fields.seed);
    request = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  }
  running += 1; $("busy").hidden = false;
  try {
    const url = p.source_domain === "image" ? "/v1/translate/upload" : "/v1/translate";
    const data = await api(url, request);
    const facts = $("facts");
    facts.replaceChildren(...data.results.map((r) => {
      const li = document.createElement("li");
      const summary = (r.samples || []).map((s) => Object.entries(s).map(([k, v]) => `${k}=${v}`).join(" "))
        .filter(Boolean).join("; ");
      li.textContent = `${r.input}` + (r.outputs ? `: ${r.outputs.join(" | ")}` : "") + (summary ? ` — ${summary}` : "");
      return li;
    }));
    if (data.grid_png) { $("grid").src = "data:image/png;base64," + data.grid_png; $("grid").hidden = false; }
    else { $("grid").hidden = true; }
    $("result").hidden = false;
  } catch (err) {
    showError(String(err.message || err));
  } finally {
    running -= 1; $("busy").hidden = running === 0;
  }
}

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); setFiles(e.dataTransfer.files); });
$("files").addEventListener("change", (e) => setFiles(e.target.files));
$("pair").addEventListener("change", onPairChange);
$("form").addEventListener("submit", submit);
loadPairs();

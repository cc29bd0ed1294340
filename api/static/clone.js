// The clone form: the spec's fields (or the whole spec as JSON) become a new job; then the page goes to it.
"use strict";

const cloneData = JSON.parse(document.getElementById("clone-data").textContent);
const form = document.getElementById("clone-form");
const fieldsBox = document.getElementById("spec-fields"), jsonBox = document.getElementById("spec-json");
const asJson = document.getElementById("as-json"), message = document.getElementById("clone-message");

class FieldError extends Error {
  constructor(field, text) { super(`${field}: ${text}`); this.field = field; }
}

function readField(el) {
  const kind = el.dataset.kind, nullable = el.dataset.nullable === "true";
  if (kind === "checkbox") return el.checked;
  if (kind === "select") return el.value;
  if (kind === "number") {
    if (el.value.trim() === "") {
      if (nullable) return null;
      throw new FieldError(el.name, "a number is needed");
    }
    const n = Number(el.value);
    if (!Number.isFinite(n)) throw new FieldError(el.name, "not a number");
    return n;
  }
  if (kind === "json") {
    try { return JSON.parse(el.value); } catch (e) { throw new FieldError(el.name, "not valid JSON"); }
  }
  return el.value;
}

function writeField(el, v) {
  const kind = el.dataset.kind;
  if (kind === "checkbox") el.checked = !!v;
  else if (kind === "json") el.value = JSON.stringify(v === undefined ? null : v);
  else el.value = v == null ? "" : v;
}

const specInputs = () => [...fieldsBox.querySelectorAll("[data-kind]")];

function specFromFields() {
  return Object.fromEntries(specInputs().map((el) => [el.name, readField(el)]));
}

function currentSpec() {
  if (!asJson.checked) return specFromFields();
  try { return JSON.parse(jsonBox.value); } catch (e) { throw new FieldError("spec", `not valid JSON (${e.message})`); }
}

// With a preset, send only what differs from it: the new job keeps its preset and reads as "preset + overrides".
function body(spec) {
  const common = { name: form.elements.name.value.trim() || null, priority: Number(form.elements.priority.value || 0) };
  if (!cloneData.preset) return { spec, ...common };
  const base = cloneData.preset_spec, overrides = {};
  for (const [k, v] of Object.entries(spec)) if (JSON.stringify(v) !== JSON.stringify(base[k])) overrides[k] = v;
  return { preset: cloneData.preset, overrides, ...common };
}

function showErrors(text, fields) {
  message.textContent = text;
  message.hidden = false;
  for (const el of fieldsBox.querySelectorAll(".field-error")) el.hidden = true;
  for (const { field, message: why } of fields) {
    const key = String(field).replace(/^(spec|overrides)\./, "").split(".")[0];
    const box = fieldsBox.querySelector(`[data-key="${CSS.escape(key)}"] .field-error`);
    if (box) { box.textContent = why; box.hidden = false; }
  }
}

asJson.addEventListener("change", () => {
  try {
    if (asJson.checked) jsonBox.value = JSON.stringify(specFromFields(), null, 2);
    else { const spec = JSON.parse(jsonBox.value); specInputs().forEach((el) => writeField(el, spec[el.name])); }
  } catch (e) {
    asJson.checked = !asJson.checked;  // stay where the text cannot be read
    return showErrors(e.message, e.field ? [{ field: e.field, message: e.message }] : []);
  }
  message.hidden = true;
  fieldsBox.hidden = asJson.checked;
  jsonBox.hidden = !asJson.checked;
});

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const button = document.getElementById("clone-submit");
  button.disabled = true;
  try {
    const job = await callApi("POST", "/jobs", body(currentSpec()));
    location.href = `/results/${job.id}`;
  } catch (e) {
    const stored = e.body && e.body.error && e.body.error.details && e.body.error.details.job;
    if (e.status === 503 && stored) { location.href = `/results/${stored.id}`; return; }  // stored; sent later
    if (e.status === 401) return;
    const details = (e.body && e.body.error && Array.isArray(e.body.error.details)) ? e.body.error.details : [];
    showErrors(e.message, e.field ? [{ field: e.field, message: e.message }] : details);
    button.disabled = false;
  }
});

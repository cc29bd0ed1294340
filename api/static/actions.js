// The job page's actions (cancel, archive, delete, tags, notes) and the JSON API helper the clone form uses too.
"use strict";

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

// Calls the JSON API as the signed-in user; a 401 goes to the login page and comes back here afterwards.
async function callApi(method, url, body) {
  const r = await fetch(url, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Requested-With": "fetch" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) {
    location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    throw new ApiError(401, null);
  }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

function jobActions(box) {
  const id = box.dataset.job, url = `/jobs/${id}`;
  const $ = (sel) => box.querySelector(sel);
  const say = (text, bad) => { $("#action-message").textContent = text; $("#action-message").className = bad ? "error-text" : "muted"; };
  const guard = (fn) => async (ev) => {
    ev.preventDefault();
    try { await fn(ev); } catch (e) { if (e.status !== 401) say(e.message, true); }
  };

  const cancel = $("#act-cancel");
  if (cancel) cancel.addEventListener("click", guard(async () => {
    cancel.disabled = true;
    const job = await callApi("POST", `${url}/cancel`);
    say(job.status === "cancelled" ? "Cancelled." : "Asked to stop: it stops at the next step boundary.");
    location.reload();
  }));

  $("#act-archive").addEventListener("click", guard(async () => {
    const job = await callApi("PATCH", url, { archived: box.dataset.archived !== "true" });
    box.dataset.archived = String(job.archived);
    $("#act-archive").textContent = job.archived ? "Unarchive" : "Archive";
    $("#archived-badge").hidden = !job.archived;
    say(job.archived ? "Archived: hidden from the jobs list (its Archived view shows it)." : "Back in the jobs list.");
  }));

  $("#act-delete").addEventListener("click", guard(async () => {
    if (!confirm(`Delete job #${id} with its metrics, result, checkpoints and log? This cannot be undone.`)) return;
    await callApi("DELETE", url);
    location.href = "/";
  }));

  inlineEditor(box, "tags", guard, async (text) => {
    const tags = text.split(",").map((t) => t.trim()).filter(Boolean);
    const job = await callApi("PATCH", url, { tags });
    const out = $("#tags");
    out.replaceChildren(...job.tags.map((t) => Object.assign(document.createElement("a"),
      { className: "tag", href: `/?tag=${encodeURIComponent(t)}`, textContent: t })));
    if (!job.tags.length) out.innerHTML = '<span class="muted">none</span>';
    return job.tags.join(", ");
  });
  inlineEditor(box, "notes", guard, async (text) => {
    const job = await callApi("PATCH", url, { notes: text });
    $("#notes").textContent = job.notes;
    if (!job.notes) $("#notes").innerHTML = '<span class="muted">none</span>';
    return job.notes;
  });
}

// An "edit" button that swaps a value for its form; `save(text)` stores it and returns the text to keep in the form.
function inlineEditor(box, name, guard, save) {
  const form = box.querySelector(`#${name}-form`), input = box.querySelector(`#${name}-input`);
  const shown = box.querySelector(`#${name}`), edit = box.querySelector(`#${name}-edit`);
  const open = (on) => { form.hidden = !on; shown.hidden = on; edit.hidden = on; if (on) input.focus(); };
  edit.addEventListener("click", () => open(true));
  form.querySelector("[data-close]").addEventListener("click", () => open(false));
  form.addEventListener("submit", guard(async () => {
    input.value = await save(input.value);
    open(false);
  }));
}

const actionsBox = document.getElementById("actions");
if (actionsBox) jobActions(actionsBox);

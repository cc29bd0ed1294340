// Run buttons of the study and report pages: POST the form as JSON, then open the new sweep (or reload).
"use strict";

function postForm(form, body, done) {
  const status = form.querySelector(".run-status, #run-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "starting…";
    const r = await apiFetch(form.dataset.url, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body(new FormData(form))) });
    if (r.status === 401) return;  // on the way to the sign-in page
    const out = await r.json();
    if (!r.ok) { status.textContent = out.error ? out.error.message : `HTTP ${r.status}`; return; }
    done(out, status);
  });
}

const runForm = document.getElementById("run");
if (runForm) {
  postForm(runForm, (f) => ({ seeds: Number(f.get("seeds")), size: f.get("size") }),
    (out) => { window.location = `/sweeps/${out.id}`; });
}
document.querySelectorAll("form.report-run").forEach((form) => {
  postForm(form, (f) => ({ seeds: Number(f.get("seeds")), presets: JSON.parse(form.dataset.presets) }),
    (out, status) => { status.textContent = `${out.jobs} job${out.jobs === 1 ? "" : "s"} queued`; });
});

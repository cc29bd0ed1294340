// The handout page: the 'run every quick study' button (POST /handout/run as the page's own write), and print.
"use strict";

const runAll = document.getElementById("run-all");
runAll.addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("run-status");
  status.textContent = "starting…";
  const r = await apiFetch(runAll.dataset.url, { method: "POST", headers: { "Content-Type": "application/json" },
    body: "{}" });
  if (r.status === 401) return;  // on the way to the sign-in page
  const out = await r.json();
  if (!r.ok) { status.textContent = out.error ? out.error.message : `HTTP ${r.status}`; return; }
  status.textContent = `${out.jobs} job${out.jobs === 1 ? "" : "s"} queued in ${out.sweep_ids.length} sweep${out.sweep_ids.length === 1 ? "" : "s"}`;
  setTimeout(() => window.location.reload(), 1500);  // the status lines now say running
});
document.getElementById("print").addEventListener("click", (event) => { event.preventDefault(); window.print(); });

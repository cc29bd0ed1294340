// Draws the job's curves on the chosen axis and, while it is queued or running, follows it every 2 s (curves,
// phase, step, elapsed time and ETA); reloads once it ends, so the server draws the rest.
"use strict";

const page = pageData();
const job = { metrics: page.metrics, trainSamples: page.train_samples, batchSize: page.batch_size,
  stepsPerEpoch: (page.progress || {}).steps };
const charts = document.getElementById("curves") ? jobCharts("test subset (within epochs)") : null;  // none: no points
let axis = axisSwitch((a) => { axis = a; redraw(); });

// The x axis spans the whole planned run, so a running job's curves grow into place.
function redraw() {
  if (!charts) return;
  const n = epochSamples(job.metrics, job.trainSamples);
  const max = axis === "epochs" ? page.epochs : (n && page.epochs ? n * page.epochs : null);
  drawJob(charts, job, axis, max);
}

function duration(s) {
  if (s == null) return null;
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s` : `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

// "training · epoch 1/2 · step 120/314 · 1m 02s elapsed · about 40s left", as the server renders it.
function progressText(j) {
  const p = j.progress || {};
  const parts = [p.phase || j.status];
  if (p.epoch != null && p.epochs != null) parts.push(`epoch ${p.epoch}/${p.epochs}`);
  if (p.global_step != null && p.total_steps != null) parts.push(`step ${p.global_step}/${p.total_steps}`);
  if (p.elapsed_seconds != null) parts.push(`${duration(p.elapsed_seconds)} elapsed`);
  if (p.eta_seconds != null) parts.push(`about ${duration(p.eta_seconds)} left`);
  return parts.join(" · ");
}

// Resolves once the log panel has its last lines (or after 5 s), so a reload does not cut its stream short.
function logEnded() {
  const panel = document.getElementById("log-panel");
  if (!panel || panel.dataset.live !== "true") return Promise.resolve();
  return new Promise((done) => {
    document.addEventListener("log-ended", done, { once: true });
    setTimeout(done, 5000);
  });
}

async function follow() {
  try {
    const [j, m] = await Promise.all([`/jobs/${page.id}`, `/jobs/${page.id}/metrics`]
      .map((u) => fetch(u).then((r) => (r.ok ? r.json() : Promise.reject(r.status)))));
    if (!["queued", "running"].includes(j.status)) return logEnded().then(() => location.reload());  // the server draws the rest
    job.metrics = m;
    job.stepsPerEpoch = (j.progress || {}).steps || job.stepsPerEpoch;
    page.epochs = (j.progress || {}).epochs || page.epochs;
    redraw();
    const p = j.progress || {};
    document.getElementById("progress").value = p.fraction || 0;
    document.getElementById("phase").textContent = progressText(j);
    document.querySelector("#status .status").textContent = j.status;
    document.querySelector("#status .status").className = `status ${j.status}`;
  } catch (e) {
    // the API is restarting or briefly unreachable: try again on the next tick
  }
  setTimeout(follow, 2000);
}

redraw();
if (["queued", "running"].includes(page.status)) setTimeout(follow, 2000);

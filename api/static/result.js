// Draws the job's curves and, while it is queued or running, follows it every 2 s; reloads once it ends.
"use strict";

const page = pageData();
// A failed or cancelled job with nothing recorded has no canvases: the page says why instead.
const charts = !document.getElementById("chart-loss") ? {} : {
  // the epoch axes span the whole run, so a running job's curves grow into place
  loss: lineChart("chart-loss", [{ label: "train", data: [] }, { label: "test", data: [] }],
    { y: "loss", xMax: page.epochs }),
  acc: lineChart("chart-acc", [{ label: "test accuracy", data: [] }], { y: "accuracy", percent: true, xMax: page.epochs }),
  steps: lineChart("chart-steps", [{ label: "training loss", data: [] }], { x: "step", y: "loss" }),
};

function draw(m) {
  if (!charts.loss) return;
  charts.loss.data.datasets[0].data = epochPoints(m, "train_loss");
  charts.loss.data.datasets[1].data = epochPoints(m, "test_loss");
  charts.acc.data.datasets[0].data = epochPoints(m, "test_accuracy", 100);
  charts.steps.data.datasets[0].data = stepPoints(m);
  Object.values(charts).forEach((c) => c.update());
}

async function follow() {
  try {
    const [job, m] = await Promise.all([`/jobs/${page.id}`, `/jobs/${page.id}/metrics`]
      .map((u) => fetch(u).then((r) => (r.ok ? r.json() : Promise.reject(r.status)))));
    if (!["queued", "running"].includes(job.status)) return location.reload();  // the server draws the rest
    draw(m);
    const p = job.progress || {};
    document.getElementById("progress").value = p.fraction || 0;
    document.getElementById("phase").textContent =
      p.epoch != null ? `${p.phase || job.status}: epoch ${p.epoch}/${p.epochs}` : job.status;
    document.querySelector("#status .status").textContent = job.status;
    document.querySelector("#status .status").className = `status ${job.status}`;
  } catch (e) {
    // the API is restarting or briefly unreachable: try again on the next tick
  }
  setTimeout(follow, 2000);
}

draw(page.metrics);
if (["queued", "running"].includes(page.status)) setTimeout(follow, 2000);

// Curves against samples seen or epochs (a switch above the charts), for the job page and /compare.
// A job's metrics (GET /jobs/<id>/metrics) give test points by samples seen (evals: the fixed test subset within
// epochs, the whole test set at each epoch's end), the training loss every few steps, and per-epoch means.
"use strict";

const AXIS_TITLES = { samples: "training samples seen", epochs: "epochs" };
const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

// The chosen axis ("samples" unless the person picked "epochs" before); `onChange(axis)` on every switch.
function axisSwitch(onChange) {
  const boxes = [...document.querySelectorAll("input[name=axis]")];
  const saved = sessionStorage.getItem("cnnlab.axis");
  const axis = saved && AXIS_TITLES[saved] ? saved : "samples";
  boxes.forEach((b) => {
    b.checked = b.value === axis;
    b.addEventListener("change", () => {
      if (!b.checked) return;
      sessionStorage.setItem("cnnlab.axis", b.value);
      onChange(b.value);
    });
  });
  return axis;
}

// Training samples in one epoch of a job: from its test points (samples_seen / epoch), else what the page knew.
function epochSamples(m, known) {
  const p = m.evals.find((e) => e.epoch > 0 && e.samples_seen != null);
  return p ? p.samples_seen / p.epoch : known || null;
}

// A job recorded before test points were: its per-epoch metrics stand in as whole-test-set points.
function withEpochPoints(m, n) {
  if (m.evals.length || !m.epochs.length) return m;
  const evals = m.epochs.map((e) => ({ samples_seen: n ? e.epoch * n : null, epoch: e.epoch, full: true,
    test_loss: e.test_loss, test_accuracy: e.test_accuracy, test_samples: null }));
  return { ...m, evals };
}

// {x, y} points of a job on `axis`; `job` = {metrics, trainSamples, batchSize, stepsPerEpoch}.
function jobCurves(job, axis) {
  const m = withEpochPoints(job.metrics, job.trainSamples);
  const n = epochSamples(m, job.trainSamples);
  const stepSamples = (s) => s.samples_seen ?? s.global_step * (job.batchSize || 1);
  const stepEpochs = (s) => (n ? stepSamples(s) / n : s.epoch - 1 + s.step / (job.stepsPerEpoch || s.step));
  const onAxis = (samples, epochs) => (axis === "epochs" ? epochs : samples);
  const point = (e, key, scale = 1) => ({ x: onAxis(e.samples_seen, e.epoch), y: e[key] * scale });
  const fullOf = (epoch) => m.evals.find((e) => e.full && Math.ceil(e.epoch - 1e-9) === epoch);
  return {
    subset: m.evals.filter((e) => !e.full),
    full: m.evals.filter((e) => e.full),
    acc: (list) => list.map((e) => point(e, "test_accuracy", 100)).filter((p) => p.x != null),
    loss: (list) => list.map((e) => point(e, "test_loss")).filter((p) => p.x != null),
    steps: m.steps.map((s) => ({ x: onAxis(stepSamples(s), stepEpochs(s)), y: s.loss })),
    epochTrain: m.epochs.map((e) => {
      const f = fullOf(e.epoch);
      return { x: onAxis(f ? f.samples_seen : e.epoch * (n || 0), f ? f.epoch : e.epoch), y: e.train_loss };
    }),
  };
}

// Sets a chart's x axis to `axis`, up to `max` (null: as far as the data go).
function setAxis(chart, axis, max) {
  const x = chart.options.scales.x;
  x.title.text = AXIS_TITLES[axis];
  x.max = max ?? undefined;
  x.ticks = axis === "samples" ? { callback: (v) => compact.format(v) } : { precision: 1 };
}

// The three charts of one job: test accuracy and test loss (subset line, whole-test-set dots), training loss.
function jobCharts(subsetLabel) {
  const full = { label: "whole test set (epoch end)", data: [], showLine: false, pointRadius: 5, pointStyle: "rectRot" };
  return {
    acc: lineChart("chart-acc", [{ label: subsetLabel, data: [] }, { ...full }], { y: "accuracy", percent: true }),
    loss: lineChart("chart-loss", [{ label: subsetLabel, data: [] }, { ...full },
      { label: "training loss (epoch mean)", data: [], showLine: false, pointRadius: 4 }], { y: "loss" }),
    steps: lineChart("chart-steps", [{ label: "training loss", data: [] }], { y: "loss" }),
  };
}

function drawJob(charts, job, axis, max) {
  const c = jobCurves(job, axis);
  if (c.subset.length) {  // the subset's size, as the trainer chose it
    const n = c.subset[0].test_samples, whole = c.full.length ? c.full[0].test_samples : Infinity;
    const asked = Math.min(Number(document.getElementById("curves-note")?.dataset.evalSamples) || 0, whole);
    const held = asked > n ? `, eval_samples ${asked.toLocaleString("en")} held by the evaluation budget` : "";
    const label = `first ${n.toLocaleString("en")} test images (within epochs${held})`;
    charts.acc.data.datasets[0].label = charts.loss.data.datasets[0].label = label;
  }
  charts.acc.data.datasets[0].data = c.acc(c.subset);
  charts.acc.data.datasets[1].data = c.acc(c.full);
  charts.loss.data.datasets[0].data = c.loss(c.subset);
  charts.loss.data.datasets[1].data = c.loss(c.full);
  charts.loss.data.datasets[2].data = c.epochTrain;
  charts.steps.data.datasets[0].data = c.steps;
  Object.values(charts).forEach((chart) => {
    chart.data.datasets.forEach((d) => { if (d.showLine !== false) d.pointRadius = d.data.length > 40 ? 0 : 3; });
    setAxis(chart, axis, max);
    chart.update();
  });
}

// /compare: one line per job on each chart; the test points of a job, subset and whole set, as one line.
function drawOverlay(charts, jobs, axis) {
  jobs.forEach((job, i) => {
    const c = jobCurves(job, axis);
    const all = [...c.subset, ...c.full].sort((a, b) => a.samples_seen - b.samples_seen);
    charts.acc.data.datasets[i].data = c.acc(all);
    charts.loss.data.datasets[i].data = c.loss(all);
    charts.steps.data.datasets[i].data = c.steps;
  });
  Object.values(charts).forEach((chart) => {
    chart.data.datasets.forEach((d) => { d.pointRadius = d.data.length > 40 ? 0 : 3; });
    setAxis(chart, axis, null);
    chart.update();
  });
}

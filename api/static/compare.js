// /compare: one curve per group (a sweep cell, or the runs that share the differing fields), the mean over its runs
// with a band of ± one sd, against samples seen (so batch sizes line up) or epochs. The legend is the page's list
// above the charts (#legend), not Chart.js's own, so however many groups there are the plots keep their height.
"use strict";

const { series, groups } = pageData();
const runs = series.map((s) => ({ group: s.group, metrics: s, trainSamples: s.train_samples, batchSize: s.batch_size }));

// A curve's value at x, linearly between its points; null outside the x range it reaches.
function valueAt(points, x) {
  if (!points.length || x < points[0].x || x > points[points.length - 1].x) return null;
  let hi = points.findIndex((p) => p.x >= x);
  if (points[hi].x === x || hi === 0) return points[hi].y;
  const a = points[hi - 1], b = points[hi];
  return a.y + (b.y - a.y) * (x - a.x) / (b.x - a.x);
}

// Mean and sd (n - 1) over curves at every x any of them has; a curve counts only within its own range.
function meanBand(curves) {
  const sorted = curves.map((c) => [...c].sort((a, b) => a.x - b.x)).filter((c) => c.length);
  const xs = [...new Set(sorted.flatMap((c) => c.map((p) => p.x)))].sort((a, b) => a - b);
  return xs.map((x) => {
    const ys = sorted.map((c) => valueAt(c, x)).filter((y) => y != null);
    const mean = ys.reduce((s, y) => s + y, 0) / ys.length;
    const sd = ys.length > 1 ? Math.sqrt(ys.reduce((s, y) => s + (y - mean) ** 2, 0) / (ys.length - 1)) : 0;
    return { x, mean, sd, n: ys.length };
  });
}

// Three datasets a group: its mean line, then mean + sd and mean - sd, the last filled to the one before it.
function groupDatasets() {
  return groups.flatMap((label, i) => {
    const edge = { borderWidth: 0, pointRadius: 0, band: true, borderColor: groupColor(i), data: [] };
    return [{ label, data: [], borderColor: groupColor(i), backgroundColor: groupColor(i) },
      { ...edge, label: label + " +sd", fill: false },
      { ...edge, label: label + " -sd", fill: "-1", backgroundColor: groupColor(i, 0.2) }];
  });
}

function bandChart(id, y, percent = false) {
  const chart = lineChart(id, groupDatasets(), { y, percent });
  chart.options.plugins.legend.display = false;
  return chart;
}

const charts = { acc: bandChart("chart-acc", "accuracy", true), loss: bandChart("chart-loss", "loss"),
  steps: bandChart("chart-steps", "loss") };

function draw(axis) {
  const per = groups.map(() => ({ acc: [], loss: [], steps: [] }));
  runs.forEach((run) => {
    const c = jobCurves(run, axis);
    const all = [...c.subset, ...c.full].sort((a, b) => a.samples_seen - b.samples_seen);
    per[run.group].acc.push(c.acc(all));
    per[run.group].loss.push(c.loss(all));
    per[run.group].steps.push(c.steps);
  });
  Object.entries(charts).forEach(([key, chart]) => {
    per.forEach((curves, i) => {
      const band = meanBand(curves[key]);
      const [mean, upper, lower] = chart.data.datasets.slice(3 * i, 3 * i + 3);
      mean.data = band.map((p) => ({ x: p.x, y: p.mean }));
      upper.data = band.map((p) => ({ x: p.x, y: p.mean + p.sd }));
      lower.data = band.map((p) => ({ x: p.x, y: p.mean - p.sd }));
      mean.pointRadius = band.length > 40 ? 0 : 2;
    });
    setAxis(chart, axis, null);
    chart.update();
  });
}

// Clicking a group in the legend hides or shows its three datasets on every chart.
document.querySelectorAll("#legend button").forEach((b) => b.addEventListener("click", () => {
  const i = Number(b.dataset.group), shown = b.getAttribute("aria-pressed") !== "true";
  b.setAttribute("aria-pressed", String(shown));
  Object.values(charts).forEach((chart) => {
    [0, 1, 2].forEach((k) => chart.setDatasetVisibility(3 * i + k, shown));
    chart.update();
  });
}));
document.querySelectorAll(".swatch[data-group]").forEach((s) => { s.style.background = groupColor(Number(s.dataset.group)); });
draw(axisSwitch(draw));

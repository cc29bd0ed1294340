// The sweep page: accuracy against the swept value with 95% CI error bars, and per-epoch curves with a ±sd band.
"use strict";

const { chart, curves } = pageData();

// Chart.js draws no error bars: this plugin strokes each point's [low, high] (dataset.errorBars) as a capped line.
const errorBars = {
  id: "errorBars",
  afterDatasetsDraw(c) {
    const { ctx, scales } = c;
    c.data.datasets.forEach((ds, i) => {
      const meta = c.getDatasetMeta(i);
      if (!ds.errorBars || meta.hidden) return;
      ctx.save();
      ctx.strokeStyle = ds.borderColor;
      ctx.lineWidth = 1.5;
      meta.data.forEach((pt, j) => {
        const bar = ds.errorBars[j];
        if (!bar) return;
        const [lo, hi] = bar.map((v) => scales.y.getPixelForValue(v));
        ctx.beginPath();
        ctx.moveTo(pt.x, lo); ctx.lineTo(pt.x, hi);
        ctx.moveTo(pt.x - 5, lo); ctx.lineTo(pt.x + 5, lo);
        ctx.moveTo(pt.x - 5, hi); ctx.lineTo(pt.x + 5, hi);
        ctx.stroke();
      });
      ctx.restore();
    });
  },
};

function metricChart() {
  const pts = chart.points;
  const bounds = pts.flatMap((p) => p.ci || [p.y]);
  const pad = (Math.max(...bounds) - Math.min(...bounds)) * 0.1 || 1;
  const x = chart.numeric
    ? { type: chart.log ? "logarithmic" : "linear", title: { display: true, text: chart.x } }
    : { type: "category", labels: pts.map((p) => p.x), title: { display: true, text: chart.x } };
  return new Chart(document.getElementById("chart-metric"), {
    type: "line",
    data: { datasets: [{ label: "test accuracy", data: pts.map((p) => ({ x: p.x, y: p.y })),
      errorBars: pts.map((p) => p.ci), borderColor: PALETTE[0], backgroundColor: PALETTE[0],
      showLine: chart.numeric, pointRadius: 4 }] },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false,
      scales: { x, y: { title: { display: true, text: "accuracy" }, suggestedMin: Math.min(...bounds) - pad,
        suggestedMax: Math.max(...bounds) + pad, ticks: { callback: (v) => v + "%" } } },
      plugins: { legend: { display: false }, tooltip: { callbacks: { label: (t) => {
        const p = pts[t.dataIndex];
        return `${p.y.toFixed(2)}%` + (p.ci ? ` [${p.ci[0].toFixed(2)}, ${p.ci[1].toFixed(2)}]` : "") + `, n=${p.n}`;
      } } } },
    },
    plugins: [errorBars],
  });
}

// Three datasets per cell: the mean line, then mean+sd and mean-sd, the last filled to the one before it.
function bandDatasets(key, scale) {
  return curves.flatMap((c, i) => {
    const color = PALETTE[i % PALETTE.length];
    const at = (f) => c[key].map((p) => ({ x: p.x, y: f(p) * scale }));
    const edge = { borderWidth: 0, pointRadius: 0, band: true, borderColor: color };
    return [
      { label: c.label, data: at((p) => p.mean), borderColor: color, backgroundColor: color },
      { ...edge, label: c.label + " +sd", data: at((p) => p.mean + p.std), fill: false },
      { ...edge, label: c.label + " -sd", data: at((p) => p.mean - p.std), fill: "-1", backgroundColor: color + "33" },
    ];
  });
}

function curveChart(id, key, y, scale = 1) {
  const c = lineChart(id, bandDatasets(key, scale), { y, percent: scale === 100 });
  c.options.plugins.legend.labels = { filter: (item, data) => !data.datasets[item.datasetIndex].band };
  c.update();
  return c;
}

if (chart.points.length) metricChart();
if (curves.length) {
  curveChart("chart-acc", "test_accuracy", "accuracy", 100);
  curveChart("chart-loss", "test_loss", "loss");
}

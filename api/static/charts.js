// One look for every curve on the results pages, on the vendored Chart.js (labs run offline: no CDN).
"use strict";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
  "#4b5563", "#65a30d", "#7c3aed", "#0d9488"];

// Group i's colour: the palette, then golden-angle hues past it (a compare page may hold dozens of groups).
function groupColor(i, alpha = 1) {
  if (i < PALETTE.length) {
    const hex = PALETTE[i];
    return alpha === 1 ? hex : hex + Math.round(alpha * 255).toString(16).padStart(2, "0");
  }
  return `hsla(${Math.round((i * 137.508) % 360)}, 65%, 42%, ${alpha})`;
}

function pageData() {
  return JSON.parse(document.getElementById("page-data").textContent);
}

// points: [{x, y}]; x is an epoch or a global step, so jobs of different lengths overlay correctly.
function lineChart(id, datasets, { x = "epoch", y = "", percent = false, xMax } = {}) {
  return new Chart(document.getElementById(id), {
    type: "line",
    data: {
      datasets: datasets.map((d, i) => ({
        borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length],
        pointRadius: d.data.length > 40 ? 0 : 3, borderWidth: 2, tension: 0, ...d,
      })),
    },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      interaction: { mode: "nearest", intersect: false },
      scales: {
        x: { type: "linear", title: { display: true, text: x }, ticks: { precision: 0 }, min: 0, max: xMax },
        y: { title: { display: !!y, text: y }, ticks: percent ? { callback: (v) => v + "%" } : {},
          max: percent ? 100 : undefined },  // an accuracy axis never runs past 100%
      },
      plugins: { legend: { display: datasets.length > 1 || !!datasets[0]?.label } },
    },
  });
}

const epochPoints = (m, key, scale = 1) => m.epochs.map((e) => ({ x: e.epoch, y: e[key] * scale }));
const stepPoints = (m) => m.steps.map((s) => ({ x: s.global_step, y: s.loss }));

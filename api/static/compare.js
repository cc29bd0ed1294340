// Overlays the chosen jobs' curves, one coloured line per job on each chart, against samples seen (so runs of
// different batch sizes line up) or epochs.
"use strict";

const { series } = pageData();
const jobs = series.map((s) => ({ metrics: s, trainSamples: s.train_samples, batchSize: s.batch_size }));
const per = () => series.map((s) => ({ label: s.label, data: [] }));
const charts = {
  acc: lineChart("chart-acc", per(), { y: "accuracy", percent: true }),
  loss: lineChart("chart-loss", per(), { y: "loss" }),
  steps: lineChart("chart-steps", per(), { y: "loss" }),
};
drawOverlay(charts, jobs, axisSwitch((a) => drawOverlay(charts, jobs, a)));

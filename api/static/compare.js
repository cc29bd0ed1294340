// Overlays the chosen jobs' curves: one coloured line per job on each chart.
"use strict";

const { series } = pageData();
const per = (points) => series.map((s) => ({ label: s.label, data: points(s) }));
lineChart("chart-acc", per((s) => epochPoints(s, "test_accuracy", 100)), { y: "accuracy", percent: true });
lineChart("chart-loss", per((s) => epochPoints(s, "test_loss")), { y: "loss" });
lineChart("chart-steps", per(stepPoints), { x: "step", y: "loss" });

// The machine-use charts of a job's page: CPU % (and GPU %) and memory against seconds since the job's first attempt
// began (a gap: the job waited in the queue, e.g. after yielding to a more urgent one).
"use strict";

(function drawSystem() {
  const system = pageData().system;
  if (!system || !system.samples.length || !document.getElementById("system-cpu")) return;
  const s = system.samples;
  const attempts = [...new Set(s.map((x) => x.attempt))];
  const label = (name, a) => (attempts.length > 1 ? `${name}, attempt ${a}` : name);
  const series = (key, name, scale = 1) => attempts.map((a) => ({
    label: label(name, a),
    data: s.filter((x) => x.attempt === a && x[key] != null).map((x) => ({ x: x.at ?? x.seconds, y: x[key] * scale })),
  })).filter((d) => d.data.length);
  lineChart("system-cpu", [...series("cpu_percent", "CPU %"), ...series("gpu_percent", "GPU %"),
    ...series("load_1m", "host load × 100", 100)], { x: "seconds" });
  lineChart("system-memory", [...series("rss_mb", "resident memory"), ...series("gpu_memory_mb", "GPU memory")],
    { x: "seconds", y: "MiB" });
})();

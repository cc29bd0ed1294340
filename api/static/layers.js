// The layer viewer on a job's page: a layer menu and a test-image choice, both showing precomputed pictures.
"use strict";

(() => {
  const layerPick = document.getElementById("layer-pick");
  const section = document.getElementById("layers");
  if (!layerPick || !section) return;

  function show() {
    const layer = layerPick.value;
    const image = section.querySelector("input[name=test-image]:checked")?.value || "0";
    section.querySelectorAll(".layer").forEach((el) => { el.hidden = el.dataset.layer !== layer; });
    section.querySelectorAll(".layer .maps").forEach((el) => { el.hidden = el.dataset.image !== image; });
  }

  layerPick.addEventListener("change", show);
  section.querySelectorAll("input[name=test-image]").forEach((r) => r.addEventListener("change", show));
  show();
})();

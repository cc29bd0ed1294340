// Keeps the jobs table fresh (every 2 s while jobs are queued or running) and builds the compare link
// from the ticked rows; the ticks survive refreshes and paging.
"use strict";

const table = document.getElementById("jobs");
const link = document.getElementById("compare");
const picked = new Set(JSON.parse(sessionStorage.getItem("cnnlab.picked") || "[]"));

function restore() {
  table.querySelectorAll("tbody input[type=checkbox]").forEach((box) => { box.checked = picked.has(box.value); });
  link.href = "/compare?ids=" + [...picked].join(",");
  link.classList.toggle("disabled", picked.size === 0);
  link.textContent = picked.size ? `Compare ${picked.size} selected` : "Compare selected";
  sessionStorage.setItem("cnnlab.picked", JSON.stringify([...picked]));
}

table.addEventListener("change", (e) => {
  if (e.target.type !== "checkbox") return;
  e.target.checked ? picked.add(e.target.value) : picked.delete(e.target.value);
  restore();
});

async function refresh() {
  const url = new URL(location.href);
  url.searchParams.set("partial", "rows");
  try {
    const r = await fetch(url);
    if (r.ok) {
      table.innerHTML = await r.text();  // header too: the differing spec columns can change
      table.dataset.active = r.headers.get("X-Active-Jobs") || "0";
      restore();
    }
  } catch (e) {
    // the API is restarting or briefly unreachable: try again on the next tick
  }
  schedule();
}

// Idle lists still look every 15 s, so a job submitted elsewhere shows up without a reload.
const schedule = () => setTimeout(refresh, Number(table.dataset.active) > 0 ? 2000 : 15000);
restore();
schedule();

// The job's log: the text at once for a finished job; for a queued or running one, server-sent events from
// GET /jobs/<id>/log (one per line) appended as they come, scrolled along unless the reader scrolled up.
"use strict";

(() => {
  const panel = document.getElementById("log-panel");
  const box = document.getElementById("log");
  const state = document.getElementById("log-state");
  const url = panel.dataset.url;

  const atBottom = () => box.scrollHeight - box.scrollTop - box.clientHeight < 24;
  function append(text) {
    const follow = atBottom();
    box.append(text);
    if (follow) box.scrollTop = box.scrollHeight;
  }

  if (panel.dataset.live !== "true") {
    fetch(url).then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((text) => { append(text || ""); state.textContent = text ? "" : "empty"; })
      .catch(() => { state.textContent = "unavailable"; });
    return;
  }
  state.textContent = "following…";
  const events = new EventSource(url);  // reconnects by itself, going on from the last line it had (Last-Event-ID)
  events.onmessage = (e) => append(e.data + "\n");
  // No close() here: the server ends the stream, and answers the EventSource's reconnect with 204, which stops it.
  events.addEventListener("end", (e) => {
    state.textContent = `ended: ${JSON.parse(e.data).status}`;
    panel.dataset.live = "false";
    document.dispatchEvent(new Event("log-ended"));  // result.js waits for it before reloading the finished job
  });
  events.onerror = () => { if (panel.dataset.live === "true") state.textContent = "reconnecting…"; };
  events.onopen = () => { state.textContent = "following…"; };
})();

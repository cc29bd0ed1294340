// The pages' writes: a same-origin fetch with the session cookie and the header that marks it as the page's own
// (the server refuses cookie-signed writes without it); a 401 sends the user to sign in and then back here.
"use strict";

async function apiFetch(url, options = {}) {
  const headers = { "X-Requested-With": "fetch", Accept: "application/json", ...(options.headers || {}) };
  const r = await fetch(url, { credentials: "same-origin", ...options, headers });
  if (r.status === 401) {
    window.location = `/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`;
  }
  return r;
}
window.apiFetch = apiFetch;

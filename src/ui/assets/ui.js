// Live updates: the server sends `changed` at most once a second with the jobs that changed;
// every element with data-live="<url>" is re-fetched (its `fragment`), and data-job limits it
// to one job's changes. No framework, no build step.
(function () {
  "use strict";
  const parts = Array.from(document.querySelectorAll("[data-live]"));
  const status = document.getElementById("live-status");
  if (!parts.length || !window.EventSource) return;
  let busy = false;
  async function refresh(ids) {
    if (busy) return;
    busy = true;
    try {
      for (const el of parts) {
        const job = el.getAttribute("data-job");
        if (job && ids && !ids.includes(job)) continue;
        const res = await fetch(el.getAttribute("data-live"), { credentials: "same-origin" });
        if (res.ok) el.innerHTML = await res.text();
      }
    } finally {
      busy = false;
    }
  }
  let source = null;
  function connect() {
    source = new EventSource("/ui/events");
    source.addEventListener("changed", (e) => {
      const data = JSON.parse(e.data);
      refresh(data.truncated ? null : data.jobs);
    });
    source.addEventListener("open", () => { if (status) status.textContent = "live"; });
    source.addEventListener("error", () => { if (status) status.textContent = "reconnecting…"; });
  }
  connect();
  // Leaving the page closes the stream at once: a stream left to the browser keeps its
  // connection (one of the six a browser opens to a host) for a minute, and a few pages
  // later the next page waits for a free one. Coming back (the back button) opens it again.
  window.addEventListener("pagehide", () => source.close());
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) { connect(); refresh(null); }
  });
})();

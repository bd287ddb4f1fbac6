// Live updates: the server sends `changed` at most once a second with the jobs that changed;
// every element with data-live="<url>" is re-fetched (its `fragment`), and data-job limits it
// to one job's changes. No framework, no build step.
(function () {
  "use strict";
  const parts = Array.from(document.querySelectorAll("[data-live]"));
  const status = document.getElementById("live-status");
  if (!parts.length || !window.EventSource) return;
  // A change announced while a refresh runs may not be in what that refresh fetched: it is
  // kept, and one full refresh follows.
  let busy = false;
  let pending = false;
  async function refresh(ids) {
    if (busy) { pending = true; return; }
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
      if (pending) { pending = false; refresh(null); }
    }
  }
  let source = null;
  function connect() {
    source = new EventSource("/ui/events");
    source.addEventListener("changed", (e) => {
      const data = JSON.parse(e.data);
      refresh(data.truncated ? null : data.jobs);
    });
    // The stream starts at its connection: what changed between the page's rendering (or a
    // lost connection) and now is fetched once, so no change falls between the two.
    source.addEventListener("open", () => {
      if (status) status.textContent = "live";
      refresh(null);
    });
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

// Live updates: the server sends `changed` at most once a second with the jobs that changed;
// every element with data-live="<url>" is re-fetched (its `fragment`), and data-job limits it
// to one job's changes. No framework, no build step.
//
// The stream starts after the number the page was rendered at (body data-seq), so a change
// made while the page loaded is announced too; a part whose fetched HTML is what it already
// shows is left alone (a button found a moment ago stays the same element); a change that
// arrives during a refresh causes another one after it.
(function () {
  "use strict";
  const parts = Array.from(document.querySelectorAll("[data-live]"));
  const status = document.getElementById("live-status");
  if (!parts.length || !window.EventSource) return;
  let seq = document.body.getAttribute("data-seq") || "";
  let busy = false;
  // What arrived during a refresh: null (nothing), true (everything) or a set of job ids.
  let pending = null;
  function wants(el, ids) {
    const job = el.getAttribute("data-job");
    return !job || ids === true || ids.has(job);
  }
  async function refresh(ids) {
    if (busy) {
      pending = pending === true || ids === true ? true : new Set([...(pending || []), ...ids]);
      return;
    }
    busy = true;
    try {
      for (const el of parts) {
        if (!wants(el, ids)) continue;
        const res = await fetch(el.getAttribute("data-live"), { credentials: "same-origin" });
        if (!res.ok) continue;
        const html = await res.text();
        const parsed = document.createElement("template");
        parsed.innerHTML = html;
        if (parsed.innerHTML !== el.innerHTML) el.innerHTML = html;
      }
    } finally {
      busy = false;
    }
    if (pending !== null) {
      const next = pending;
      pending = null;
      refresh(next);
    }
  }
  let source = null;
  function connect() {
    source = new EventSource("/ui/events" + (seq ? "?since=" + encodeURIComponent(seq) : ""));
    source.addEventListener("changed", (e) => {
      if (e.lastEventId) seq = e.lastEventId;
      const data = JSON.parse(e.data);
      refresh(data.truncated ? true : new Set(data.jobs));
    });
    source.addEventListener("open", () => { if (status) status.textContent = "live"; });
    source.addEventListener("error", () => { if (status) status.textContent = "reconnecting…"; });
  }
  connect();
  // Leaving the page closes the stream at once: a stream left to the browser keeps its
  // connection (one of the six a browser opens to a host) for a minute, and a few pages
  // later the next page waits for a free one. Coming back (the back button) opens it again
  // after the last change this page saw, so what happened meanwhile is announced.
  window.addEventListener("pagehide", () => source.close());
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) connect();
  });
})();

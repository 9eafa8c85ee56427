// Beacon console: follows the server-sent events and reloads the dashboard's live part and
// the display mirror. No inline script anywhere (the CSP forbids it); the HTML comes from the
// server already escaped.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var display = document.getElementById("display");
  if (!live || !window.EventSource) { return; }
  var pending = false;
  function reload() {
    if (pending) { return; }
    pending = true;
    setTimeout(function () {
      pending = false;
      fetch("/live", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.redirected || r.status === 401 || r.status === 303) { window.location = "/login"; return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) { if (html !== null && html !== undefined) { live.innerHTML = html; } })
        .catch(function () { /* the next event retries */ });
    }, 50);
  }
  function redraw() {
    if (display) { display.src = "/display.png?t=" + Date.now(); }
  }
  var events = new EventSource("/api/events");
  events.addEventListener("alarm", reload);
  events.addEventListener("view", reload);
  events.addEventListener("resync", reload);
  events.addEventListener("hello", function () { reload(); redraw(); });
  events.addEventListener("display", redraw);
  // The status table (sign-in, hub, outbox) has no events of its own: refresh it now and then.
  setInterval(reload, 15000);
})();

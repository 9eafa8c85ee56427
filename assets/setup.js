// The setup page while a device-code sign-in waits for a person: count the code's lifetime
// down each second and reload every three seconds, so the result shows without a click.
// (No inline script: the console's CSP allows scripts from this origin only.)
(function () {
  "use strict";
  var waiting = document.querySelector("[data-waiting]");
  if (!waiting) {
    return;
  }
  var countdown = document.getElementById("countdown");
  var left = countdown ? parseInt(countdown.getAttribute("data-seconds"), 10) : NaN;
  setInterval(function () {
    if (countdown && !isNaN(left) && left > 0) {
      left -= 1;
      var seconds = left % 60;
      countdown.textContent = Math.floor(left / 60) + ":" + (seconds < 10 ? "0" : "") + seconds;
    }
  }, 1000);
  setTimeout(function () {
    window.location.reload();
  }, 3000);
})();

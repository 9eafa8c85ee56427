// Beacon console: the call map. Reads the coordinates, tiles URL and attribution from the
// #map element's data attributes (escaped by the server) and draws one marker with Leaflet.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var lat = parseFloat(el.dataset.lat);
  var lon = parseFloat(el.dataset.lon);
  if (!isFinite(lat) || !isFinite(lon)) { return; }
  var map = L.map(el).setView([lat, lon], 17);
  // The console sends no Referer anywhere (Referrer-Policy: no-referrer) except to the tile
  // server, which wants to know who asks (the OpenStreetMap tile usage policy): the origin
  // only, and only over HTTPS.
  L.tileLayer(el.dataset.tiles, {
    maxZoom: 19,
    attribution: el.dataset.attribution,
    referrerPolicy: "strict-origin"
  }).addTo(map);
  L.marker([lat, lon]).addTo(map);
  el.setAttribute("data-ready", "true");
})();

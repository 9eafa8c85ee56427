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
  L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.attribution }).addTo(map);
  L.marker([lat, lon]).addTo(map);
  el.setAttribute("data-ready", "true");
})();

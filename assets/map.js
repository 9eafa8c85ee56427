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
  var tiles = L.tileLayer(el.dataset.tiles, {
    maxZoom: 19,
    attribution: el.dataset.attribution,
    referrerPolicy: "strict-origin"
  });
  // Without internet the tiles fail and the map is an empty grey square: hide it and say
  // so; the coordinates, the address and the links under it stay (they need no network).
  var loaded = 0;
  tiles.on("tileload", function () { loaded += 1; });
  tiles.on("tileerror", function () {
    if (loaded > 0 || el.hidden) { return; }
    el.hidden = true;
    el.setAttribute("data-tiles-state", "unavailable");
    var notice = document.getElementById("map-offline");
    if (notice) { notice.hidden = false; }
  });
  tiles.addTo(map);
  L.marker([lat, lon]).addTo(map);
  el.setAttribute("data-ready", "true");
})();

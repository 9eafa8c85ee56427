// Beacon console: the floor-plan editor's one help. A click on a plan adds the corner under
// the pointer (in the image's pixels) to the line the cursor is on in that plan's zones field;
// moving over the plan shows the pointer's corner. Without this script the corners are typed.
(function () {
  "use strict";
  function corner(svg, event) {
    var matrix = svg.getScreenCTM();
    if (!matrix) { return null; }
    var point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    var at = point.matrixTransform(matrix.inverse());
    var box = svg.viewBox.baseVal;
    var x = Math.round(Math.min(Math.max(at.x, 0), box.width));
    var y = Math.round(Math.min(Math.max(at.y, 0), box.height));
    return x + "," + y;
  }
  function addToCurrentLine(field, text) {
    var value = field.value;
    var caret = field.selectionEnd === undefined ? value.length : field.selectionEnd;
    var end = value.indexOf("\n", caret);
    if (end < 0) { end = value.length; }
    var before = value.slice(0, end);
    var separator = before === "" || /[\s:]$/.test(before) ? "" : " ";
    field.value = before + separator + text + value.slice(end);
    var after = end + separator.length + text.length;
    field.focus();
    field.setSelectionRange(after, after);
  }
  var plans = document.querySelectorAll("svg.floor-plan.editor");
  Array.prototype.forEach.call(plans, function (svg) {
    var field = document.getElementById(svg.dataset.zonesField);
    var readout = document.getElementById(svg.dataset.coordinates);
    if (!field) { return; }
    svg.addEventListener("click", function (event) {
      var text = corner(svg, event);
      if (text) { addToCurrentLine(field, text); }
    });
    svg.addEventListener("mousemove", function (event) {
      var text = corner(svg, event);
      if (text && readout) { readout.textContent = text; }
    });
  });
})();

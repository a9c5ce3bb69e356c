// The signature pad of the consent page: draw with a finger, a stylus or the mouse (pointer events); on
// submit the drawing goes into the hidden "signature" input as a PNG data URL. Nothing drawn: the form is not
// sent and the page says so (the server refuses an empty signature the same way, and validates and
// re-encodes every one it keeps).
(function () {
  "use strict";

  const canvas = document.getElementById("signature-pad");
  const form = document.getElementById("sign-form");
  if (!canvas || !form) return;
  const input = document.getElementById(canvas.dataset.input);
  const clear = document.getElementById("signature-clear");
  const context = canvas.getContext("2d");
  let drawing = false;
  let strokes = 0;
  let last = null;

  context.lineWidth = 2.5;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.strokeStyle = "#14143c";

  function position(event) {
    // The canvas keeps its 600 × 200 drawing size whatever size CSS shows it at.
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * canvas.width) / box.width,
      y: ((event.clientY - box.top) * canvas.height) / box.height,
    };
  }

  canvas.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    drawing = true;
    last = position(event);
    canvas.setPointerCapture(event.pointerId);
    context.beginPath();
    context.arc(last.x, last.y, context.lineWidth / 2, 0, Math.PI * 2);
    context.fillStyle = context.strokeStyle;
    context.fill();
  });

  canvas.addEventListener("pointermove", function (event) {
    if (!drawing) return;
    event.preventDefault();
    const point = position(event);
    context.beginPath();
    context.moveTo(last.x, last.y);
    context.lineTo(point.x, point.y);
    context.stroke();
    last = point;
  });

  function stop(event) {
    if (!drawing) return;
    drawing = false;
    strokes += 1;
    canvas.dataset.strokes = String(strokes);
    if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
  }
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);

  if (clear) {
    clear.addEventListener("click", function () {
      context.clearRect(0, 0, canvas.width, canvas.height);
      strokes = 0;
      canvas.dataset.strokes = "0";
      input.value = "";
    });
  }

  const error = document.getElementById("signature-error");
  form.addEventListener("submit", function (event) {
    if (strokes === 0) {
      // Nothing drawn: say so here (the server would refuse it the same way).
      event.preventDefault();
      input.value = "";
      if (error) error.textContent = canvas.dataset.empty;
      canvas.focus();
      return;
    }
    if (error) error.textContent = "";
    input.value = canvas.toDataURL("image/png");
  });

  canvas.dataset.ready = "true";
})();

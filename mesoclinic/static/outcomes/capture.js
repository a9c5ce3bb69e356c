// The photo capture screen: the baseline photo of the same view lies over the camera picture (or over the
// chosen photo) as a faint ghost, so the patient's pose and the distance can be matched. Opacity is a class
// (ghost-0 … ghost-100), never an inline style (CSP). With a camera the browser may use (a secure page), the
// live picture is shown under the ghost and "Take the photo" puts the frame into the form's file input;
// otherwise the file input opens the tablet's camera (capture="environment") or the gallery.
(function () {
  "use strict";

  const stage = document.getElementById("capture-stage");
  const form = document.getElementById("capture-form");
  if (!stage || !form) return;

  const ghost = document.getElementById("capture-ghost");
  const range = document.getElementById("ghost-opacity");
  const input = document.getElementById("capture-file");
  const preview = document.getElementById("capture-preview");
  const video = document.getElementById("capture-video");
  const cameraButton = document.getElementById("capture-camera");
  const shootButton = document.getElementById("capture-shoot");
  let stream = null;

  function setGhost(value) {
    if (!ghost) return;
    const step = Math.max(0, Math.min(100, Math.round(Number(value) / 10) * 10));
    for (const name of Array.from(ghost.classList)) {
      if (name.startsWith("ghost-")) ghost.classList.remove(name);
    }
    ghost.classList.add("ghost-" + step);
    ghost.dataset.opacity = String(step);
  }

  function showPreview(dataUrl) {
    preview.src = dataUrl;
    preview.hidden = false;
    stage.dataset.ready = "true";
  }

  function stopCamera() {
    if (stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      stream = null;
    }
    video.hidden = true;
    shootButton.hidden = true;
  }

  if (range) {
    range.addEventListener("input", function () { setGhost(range.value); });
    setGhost(range.value);
  }

  function previewChosen() {
    const file = input.files && input.files[0];
    if (!file) return;
    stopCamera();
    const reader = new FileReader();
    reader.addEventListener("load", function () {
      if (typeof reader.result === "string" && reader.result.startsWith("data:image/")) showPreview(reader.result);
    });
    reader.readAsDataURL(file);
  }

  input.addEventListener("change", previewChosen);
  // A photo chosen while the page was still loading (a slow tablet) fired its change before this script ran.
  previewChosen();

  const canUseCamera = window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
  if (canUseCamera && typeof DataTransfer === "function") {
    cameraButton.hidden = false;
    cameraButton.addEventListener("click", function () {
      navigator.mediaDevices
        .getUserMedia({ video: { facingMode: "environment" }, audio: false })
        .then(function (opened) {
          stream = opened;
          video.srcObject = opened;
          video.hidden = false;
          preview.hidden = true;
          shootButton.hidden = false;
        })
        .catch(function () { cameraButton.hidden = true; });
    });
    shootButton.addEventListener("click", function () {
      if (!stream || !video.videoWidth) return;
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      canvas.toBlob(function (blob) {
        if (!blob) return;
        const transfer = new DataTransfer();
        transfer.items.add(new File([blob], "capture.jpg", { type: "image/jpeg" }));
        input.files = transfer.files;
        showPreview(canvas.toDataURL("image/jpeg", 0.9));
        stopCamera();
      }, "image/jpeg", 0.92);
    });
  }
  stage.dataset.ready = stage.dataset.ready || "false";
  stage.dataset.script = "ready";
})();

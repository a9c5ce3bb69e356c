// The photo comparison slider: the first date lies over the second and the range input uncovers it, in 5 %
// steps, by switching a class (reveal-0 … reveal-100) on the top picture — no inline style (CSP).
(function () {
  "use strict";

  const range = document.getElementById("compare-range");
  const before = document.getElementById("compare-before");
  const slider = document.getElementById("compare-slider");
  if (!range || !before || !slider) return;

  function reveal(value) {
    const step = Math.max(0, Math.min(100, Math.round(Number(value) / 5) * 5));
    for (const name of Array.from(before.classList)) {
      if (name.startsWith("reveal-")) before.classList.remove(name);
    }
    before.classList.add("reveal-" + step);
    slider.dataset.reveal = String(step);
  }

  range.addEventListener("input", function () { reveal(range.value); });
  reveal(range.value);
  slider.dataset.ready = "true";
})();

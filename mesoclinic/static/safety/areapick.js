// The side-effect form's body map: tapping an area chooses it in the "Where" list, and choosing it in the
// list shows it on the map. The list is the form's field; the map only helps to find the area.
(function () {
  "use strict";

  const map = document.getElementById("safety-map");
  const select = document.getElementById("id_area");
  if (!map || !select) return;

  function show(code) {
    map.querySelectorAll("polygon.area").forEach((polygon) => {
      polygon.classList.toggle("planned", polygon.dataset.area === code);
    });
  }

  map.addEventListener("click", (event) => {
    const polygon = event.target.closest("polygon[data-area]");
    if (!polygon) return;
    const code = polygon.dataset.area;
    if (!Array.from(select.options).some((option) => option.value === code)) return;
    select.value = code;
    select.dispatchEvent(new Event("change", { bubbles: true }));
  });
  select.addEventListener("change", () => show(select.value));
  show(select.value);
  map.dataset.ready = "true";
})();

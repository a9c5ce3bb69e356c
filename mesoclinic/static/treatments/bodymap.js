// The charting body map: tap an area, then tap injection points inside it. Each charted area is a form of
// the page's Django formset ("areas-N-…"); its points live in the hidden "areas-N-points" input as JSON
// [[x, y], …] in the view's SVG coordinates. The server checks every point against the area's outline.
(function () {
  "use strict";

  const root = document.getElementById("bodymap");
  const form = document.getElementById("chart-form");
  if (!root || !form) return;

  const SVG_NS = "http://www.w3.org/2000/svg";
  const labels = JSON.parse(document.getElementById("area-labels").textContent);
  const viewsOfArea = JSON.parse(document.getElementById("area-views").textContent);
  const cards = document.getElementById("chart-areas");
  const template = document.getElementById("area-card-template");
  const total = form.querySelector('input[name="areas-TOTAL_FORMS"]');
  let active = null;

  function field(card, name) {
    return card.querySelector('[name="' + card.dataset.prefix + "-" + name + '"]');
  }

  function pointsOf(card) {
    try {
      const value = JSON.parse(field(card, "points").value || "[]");
      return Array.isArray(value) ? value : [];
    } catch (error) {
      return [];
    }
  }

  function isDeleted(card) {
    const box = field(card, "DELETE");
    return box !== null && box.checked;
  }

  function svgFor(area) {
    return root.querySelector('svg[data-view="' + viewsOfArea[area] + '"]');
  }

  function draw(card) {
    root.querySelectorAll('circle.mark[data-card="' + card.dataset.prefix + '"]').forEach((c) => c.remove());
    if (isDeleted(card)) return;
    const area = field(card, "area").value;
    const svg = svgFor(area);
    const points = pointsOf(card);
    card.querySelector(".point-count").textContent = String(points.length);
    if (!svg) return;
    const group = svg.querySelector("g.marks");
    points.forEach((point, index) => {
      const circle = document.createElementNS(SVG_NS, "circle");
      circle.setAttribute("class", "mark" + (card === active ? " active" : ""));
      circle.setAttribute("cx", String(point[0]));
      circle.setAttribute("cy", String(point[1]));
      circle.setAttribute("r", "2");
      circle.dataset.card = card.dataset.prefix;
      circle.dataset.index = String(index);
      group.appendChild(circle);
    });
  }

  function select(card) {
    active = card;
    cards.querySelectorAll(".area-card").forEach((other) => {
      other.classList.toggle("active", other === card);
      draw(other);
    });
  }

  function label(card) {
    const area = field(card, "area").value;
    card.dataset.area = area;
    card.querySelector(".area-name").textContent = labels[area] || area;
  }

  function newCard(area) {
    const index = Number(total.value);
    const html = template.innerHTML.replace(/__prefix__/g, String(index));
    const holder = document.createElement("div");
    holder.innerHTML = html.trim();
    const card = holder.firstElementChild;
    cards.appendChild(card);
    total.value = String(index + 1);
    field(card, "area").value = area;
    field(card, "points").value = "[]";
    wire(card);
    label(card);
    return card;
  }

  function cardFor(area) {
    if (active && !isDeleted(active) && field(active, "area").value === area) return active;
    const existing = Array.from(cards.querySelectorAll(".area-card")).find(
      (card) => !isDeleted(card) && field(card, "area").value === area
    );
    return existing || newCard(area);
  }

  function svgPoint(svg, event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const local = point.matrixTransform(svg.getScreenCTM().inverse());
    return [Math.round(local.x * 10) / 10, Math.round(local.y * 10) / 10];
  }

  function addPoint(card, point) {
    const points = pointsOf(card);
    points.push(point);
    field(card, "points").value = JSON.stringify(points);
    select(card);
  }

  function removePoint(card, index) {
    const points = pointsOf(card);
    points.splice(index, 1);
    field(card, "points").value = JSON.stringify(points);
    select(card);
  }

  function wire(card) {
    card.addEventListener("click", (event) => {
      if (event.target.closest(".remove-area")) return;
      if (active !== card) select(card);
    });
    card.querySelector(".remove-area").addEventListener("click", () => {
      const box = field(card, "DELETE");
      if (box) box.checked = true;
      card.hidden = true;
      if (active === card) active = null;
      draw(card);
    });
  }

  root.addEventListener("click", (event) => {
    const mark = event.target.closest("circle.mark");
    if (mark && mark.dataset.card) {
      const card = cards.querySelector('.area-card[data-prefix="' + mark.dataset.card + '"]');
      if (card) removePoint(card, Number(mark.dataset.index));
      return;
    }
    const polygon = event.target.closest("polygon.area");
    if (!polygon) return;
    const svg = polygon.ownerSVGElement;
    addPoint(cardFor(polygon.dataset.area), svgPoint(svg, event));
  });

  root.querySelectorAll("[data-view-tab]").forEach((tab) => {
    tab.addEventListener("click", () => {
      const view = tab.dataset.viewTab;
      root.querySelectorAll("[data-view-tab]").forEach((other) => {
        other.setAttribute("aria-selected", other === tab ? "true" : "false");
      });
      root.querySelectorAll("figure.bodymap-view").forEach((figure) => {
        figure.hidden = figure.dataset.view !== view;
      });
    });
  });

  cards.querySelectorAll(".area-card").forEach((card) => {
    wire(card);
    label(card);
    if (isDeleted(card)) card.hidden = true;
    draw(card);
  });
  const first = cards.querySelector(".area-card:not([hidden])");
  if (first) select(first);
  root.dataset.ready = "true";
})();

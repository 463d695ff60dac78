// Footfall's console: draws the charts whose data a page carries in data-chart, and asks before a
// form marked data-confirm is sent, and shows the new rule form's numbers for the kind chosen. No
// inline script anywhere (the pages' Content-Security-Policy).
"use strict";

const PALETTE = ["#2f6fdf", "#e0803a", "#3aa57a", "#b0469c", "#c9a227", "#5b6b7f", "#d2453d", "#1f9bb0"];

function drawChart(canvas) {
  const data = JSON.parse(canvas.dataset.chart);
  const stacked = canvas.dataset.stacked === "true";
  data.datasets.forEach((dataset, n) => {
    dataset.backgroundColor = PALETTE[n % PALETTE.length];
  });
  canvas.chart = new Chart(canvas, {
    type: "bar",
    data: data,
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: {x: {stacked: stacked}, y: {stacked: stacked, beginAtZero: true, ticks: {precision: 0}}},
      plugins: {legend: {display: data.datasets.length > 1}},
    },
  });
}

// The rule form's numbers of the other kinds, hidden and disabled (so not sent); without this script
// every field shows, and the server names any that the kind does not use.
function showKindFields(select) {
  select.form.querySelectorAll("fieldset[data-kind]").forEach((fieldset) => {
    const chosen = fieldset.dataset.kind === select.value;
    fieldset.hidden = !chosen;
    fieldset.disabled = !chosen;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("canvas[data-chart]").forEach(drawChart);
  const kind = document.getElementById("rule-kind");
  if (kind) {
    showKindFields(kind);
    kind.addEventListener("change", () => showKindFields(kind));
  }
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  });
});

/* Charts of the statistics page (/ui/statistics), drawn with the vendored ECharts from the figures the
   server embedded in <script type="application/json" id="stats-data"> (never evaluated as code). Every
   chart has its table on the page, so nothing is lost without JavaScript. Tooltips are rendered as rich
   text (no HTML with inline styles, which the Content-Security-Policy refuses).
   ECharts (about 1 MB) is loaded once the page itself has loaded, and the charts are drawn one per frame,
   those on screen first: the tables are readable and the page usable without waiting for the charts.
   When all are drawn, <body> gets data-charts="drawn" and data-charts-ms (milliseconds since navigation
   start; benchmarks/pages.py reports it). */
(function () {
  "use strict";
  var COLORS = ["#0b4f9c", "#c05600", "#0d5b22", "#6b3fa0", "#8a0010", "#00677f"];

  function figures() {
    var el = document.getElementById("stats-data");
    if (!el) { return null; }
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function base(extra) {
    var option = {
      color: COLORS,
      aria: { enabled: true },
      animation: false,
      tooltip: { trigger: "axis", renderMode: "richText" },
      legend: { top: 0 },
      grid: { left: 56, right: 56, top: 36, bottom: 40, containLabel: true }
    };
    Object.keys(extra).forEach(function (k) { option[k] = extra[k]; });
    return option;
  }

  function draw(id, option) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(option);
    el.setAttribute("data-chart", "drawn");
    return chart;
  }

  function labelsAxis(labels, rotate) {
    return { type: "category", data: labels, axisLabel: { interval: 0, rotate: rotate || 0, width: 120, overflow: "truncate" } };
  }

  function options(d) {
    var L = d.labels, out = {};
    out["chart-classes"] = base({
      xAxis: labelsAxis(d.classes.labels),
      yAxis: [{ type: "value", name: L.rate, max: 100, min: 0 }, { type: "value", name: L.cycle, min: 0 }],
      series: [
        { name: L.rate, type: "bar", data: d.classes.settlement_rate, label: { show: true, position: "top", formatter: "{c}%" } },
        { name: L.cycle, type: "line", yAxisIndex: 1, data: d.classes.avg_cycle_days, symbolSize: 8 }
      ]
    });
    out["chart-trend"] = base({
      xAxis: labelsAxis(d.trend.labels),
      yAxis: [{ type: "value", name: L.rate, max: 100, min: 0 }, { type: "value", name: L.cycle, min: 0 }],
      series: [
        { name: L.rate, type: "line", data: d.trend.settlement_rate, connectNulls: true, symbolSize: 8 },
        { name: L.cycle, type: "line", yAxisIndex: 1, data: d.trend.avg_cycle_days, connectNulls: true, symbolSize: 8 }
      ]
    });
    out["chart-states"] = base({
      legend: { show: false },
      xAxis: labelsAxis(d.states.labels, 30),
      yAxis: { type: "value", name: L.count, minInterval: 1 },
      series: [{ name: L.count, type: "bar", data: d.states.values, label: { show: true, position: "top" } }]
    });
    out["chart-coverage"] = base({
      xAxis: labelsAxis(d.coverage.labels, d.coverage.labels.length > 6 ? 30 : 0),
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: L.units, type: "bar", data: d.coverage.units, label: { show: true, position: "top" } },
        { name: L.target, type: "bar", data: d.coverage.target }
      ]
    });
    out["chart-merchants"] = base({
      legend: { show: false },
      grid: { left: 16, right: 40, top: 16, bottom: 24, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: d.merchants.labels, axisLabel: { width: 220, overflow: "truncate" } },
      series: [{ name: L.count, type: "bar", data: d.merchants.complaints, label: { show: true, position: "right" } }]
    });
    out["chart-hotspots"] = base({
      grid: { left: 16, right: 40, top: 36, bottom: 24, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: d.hotspots.labels, axisLabel: { width: 160, overflow: "truncate" } },
      series: [
        { name: L.complaints, type: "bar", data: d.hotspots.complaints, label: { show: true, position: "right" } },
        { name: L.previous, type: "bar", data: d.hotspots.previous }
      ]
    });
    return out;
  }

  function onScreen(id) {
    var el = document.getElementById(id);
    if (!el) { return false; }
    var r = el.getBoundingClientRect();
    return r.bottom > 0 && r.top < (window.innerHeight || 800);
  }

  function render(d) {
    var all = options(d), charts = [];
    var ids = Object.keys(all).sort(function (a, b) { return Number(onScreen(b)) - Number(onScreen(a)); });
    function next() {
      var id = ids.shift();
      if (!id) {
        window.addEventListener("resize", function () { charts.forEach(function (c) { if (c) { c.resize(); } }); });
        document.body.setAttribute("data-charts-ms", String(Math.round(performance.now())));
        document.body.setAttribute("data-charts", "drawn");
        return;
      }
      charts.push(draw(id, all[id]));
      window.requestAnimationFrame(function () { setTimeout(next, 0); });
    }
    next();
  }

  function start() {
    var d = figures();
    var src = document.body.getAttribute("data-echarts");
    if (!d || !src) { return; }
    var script = document.createElement("script");
    script.src = src;
    script.onload = function () { if (window.echarts) { render(d); } };
    document.head.appendChild(script);
  }

  if (document.readyState === "complete") { start(); } else { window.addEventListener("load", start); }
})();

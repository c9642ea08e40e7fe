/* Progressive enhancement of the 12315 ODR console (every page works without this file):
   - live deadline countdowns: <time class="countdown" data-due="ISO"> re-rendered every 20 s;
   - live notifications: pages with <body data-events="/ui/events"> listen to the Server-Sent Events
     stream; each notice fires "odr:notice" on <body> (htmx lists refresh on it) and refreshes the
     #inbox list in place, announcing new cases in the #live-status region. */
(function () {
  "use strict";
  var WARN_SECONDS = 24 * 3600;
  var lang = document.body ? document.body.getAttribute("data-lang") : "zh";

  function duration(seconds) {
    seconds = Math.abs(Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
    if (lang === "en") { return d ? d + "d " + h + "h" : h + "h " + m + "m"; }
    return d ? d + "天" + h + "小时" : h + "小时" + m + "分";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.countdown[data-due]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-due")) - now) / 1000;
      if (isNaN(left)) { return; }
      var text = left < 0 ? (lang === "en" ? "overdue by " + duration(left) : "已超时 " + duration(left))
                          : (lang === "en" ? duration(left) + " left" : "剩余 " + duration(left));
      if (el.textContent !== text) { el.textContent = text; }
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("warn", left >= 0 && left < WARN_SECONDS);
      el.classList.toggle("ok", left >= WARN_SECONDS);
    });
  }

  function refreshInbox(announce) {
    var inbox = document.getElementById("inbox");
    if (!inbox || !inbox.getAttribute("data-refresh")) { return; }
    fetch(inbox.getAttribute("data-refresh"), { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#inbox");
        if (fresh) { inbox.replaceWith(fresh); tick(); }
        var status = document.getElementById("live-status");
        if (announce && status) { status.textContent = status.getAttribute("data-new-case") || ""; }
      })
      .catch(function () {});
  }

  function listen() {
    var url = document.body.getAttribute("data-events");
    if (!url || !window.EventSource) { return; }
    var source = new EventSource(url);
    var kinds = ["new_case", "feedback_submitted", "case_closed", "deadline_warning", "deadline_breached", "liaison_overdue", "deadlines_changed"];
    function onNotice(event) {
      document.body.dispatchEvent(new CustomEvent("odr:notice", { detail: { kind: event.type } }));
      refreshInbox(event.type === "new_case");
    }
    kinds.forEach(function (kind) { source.addEventListener(kind, onNotice); });
    source.onmessage = onNotice;
    document.body.setAttribute("data-events-state", "listening");
    source.onopen = function () { document.body.setAttribute("data-events-state", "open"); };
  }

  function fileName(header) {
    if (!header) { return null; }
    var star = /filename\*=UTF-8''([^;]+)/i.exec(header);
    if (star) { try { return decodeURIComponent(star[1]); } catch (e) { /* fall through */ } }
    var plain = /filename="?([^";]+)"?/i.exec(header);
    return plain ? plain[1] : null;
  }

  function save(blob, name) {
    var url = URL.createObjectURL(blob);
    var a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 2000);
  }

  function downloads() {
    if (!window.fetch || !window.URL || !URL.createObjectURL) { return; }
    document.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a[data-download]") : null;
      if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) { return; }
      event.preventDefault();
      var box = link.closest(".export") || link.parentNode;
      if (box.classList.contains("busy")) { return; }
      box.classList.add("busy");
      box.setAttribute("aria-busy", "true");
      fetch(link.href, { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) { throw new Error(String(r.status)); }
          var name = fileName(r.headers.get("Content-Disposition")) || "export";
          return r.blob().then(function (blob) { save(blob, name); });
        })
        .catch(function () { window.location.href = link.href; })
        .then(function () { box.classList.remove("busy"); box.removeAttribute("aria-busy"); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    lang = document.body.getAttribute("data-lang") || "zh";
    tick();
    setInterval(tick, 20000);
    document.body.addEventListener("htmx:afterSwap", tick);
    listen();
    downloads();
  });
})();

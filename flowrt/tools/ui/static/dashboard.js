// flowrt dashboard: the live parts of a page, and the clocks of running runs.
// No framework and no build step. The server renders every piece of HTML (escaped
// there); this script only swaps the parts the server says changed.
"use strict";
(function () {
  const main = document.querySelector("main[data-live-url]");
  const light = document.getElementById("live");

  function duration(s) {  // as the server writes them (tools/_format.py: duration)
    if (!(s >= 0)) s = 0;
    if (s < 1) return s.toFixed(3) + "s";
    if (s < 60) return s.toFixed(2) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }

  function tick() {
    const now = Date.now() / 1000;
    for (const el of document.querySelectorAll("[data-since]")) {
      const since = parseFloat(el.dataset.since);
      if (isFinite(since)) el.textContent = duration(now - since);
    }
  }
  tick();
  setInterval(tick, 1000);

  if (!main) return;
  const url = main.dataset.liveUrl;
  let every = parseInt(main.dataset.every, 10) || 1500;
  let version = main.dataset.version || "";
  const waiting = new Map();  // parts not swapped yet: someone is typing in them

  function state(name, title) {
    if (!light) return;
    light.dataset.state = name;
    light.title = title;
  }

  function busy(el) {
    const active = document.activeElement;
    if (active && active !== document.body && el.contains(active)) return true;
    for (const field of el.querySelectorAll("input:not([type=hidden]), textarea")) {
      if (field.value !== field.defaultValue) return true;
    }
    return false;
  }

  function swap(name, html) {
    const el = main.querySelector('[data-live="' + CSS.escape(name) + '"]');
    if (!el) return;
    if (busy(el)) { waiting.set(name, html); return; }
    waiting.delete(name);
    const scrolls = Array.from(el.querySelectorAll(".scroll"), (s) => [s.scrollLeft, s.scrollTop]);
    const open = Array.from(el.querySelectorAll("details"), (d) => d.open);
    el.innerHTML = html;
    el.querySelectorAll(".scroll").forEach((s, i) => {
      if (scrolls[i]) { s.scrollLeft = scrolls[i][0]; s.scrollTop = scrolls[i][1]; }
    });
    el.querySelectorAll("details").forEach((d, i) => { if (open[i]) d.open = true; });
  }

  async function poll() {
    if (!document.hidden) {
      try {
        const sep = url.includes("?") ? "&" : "?";
        const response = await fetch(url + sep + "v=" + encodeURIComponent(version), {
          cache: "no-store", credentials: "same-origin", headers: { Accept: "application/json" },
        });
        const next = parseInt(response.headers.get("x-next-poll"), 10);
        if (next > 0) every = next;  // the server says how often it can afford to be asked
        if (response.status === 200) {
          const data = await response.json();
          version = data.v;
          main.dataset.version = version;
          for (const [name, html] of Object.entries(data.sections)) swap(name, html);
          tick();
          state("on", "live: updated " + new Date().toLocaleTimeString());
        } else if (response.status === 204) {
          state("on", "live: up to date at " + new Date().toLocaleTimeString());
        } else if (response.status === 401) {
          state("off", "logged out: reload the page to log in again");
          return;
        } else {
          state("error", "the server answered " + response.status);
        }
      } catch (error) {
        state("error", "no answer from the dashboard's server");
      }
      for (const [name, html] of Array.from(waiting)) swap(name, html);
    }
    setTimeout(poll, every);
  }
  setTimeout(poll, every);
})();

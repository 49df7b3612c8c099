// Shared by every page: the block event stream, JSON reads, tables, charts, URL state.
// Values arrive formatted by the server (exact integer arithmetic there); the page only
// places text. Nothing here polls: pages re-read their view when a block event says so.

const statusEl = () => document.getElementById("chain-status");

export function setStatus(text, state) {
  const el = statusEl();
  if (!el) return;
  el.textContent = text;
  el.dataset.state = state;
}

export function showError(message) {
  const el = document.getElementById("page-error");
  if (!el) return;
  el.textContent = message || "";
  el.hidden = !message;
}

export function announce(text) {
  const el = document.getElementById("announcer");
  if (el) el.textContent = text;
}

export async function api(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, { headers: { accept: "application/json" }, cache: "no-store" });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`${path}: HTTP ${response.status}`);
  }
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

// One EventSource per page. `onBlock(event)` gets every committed block's summary.
export function subscribe(onBlock, onStatus = () => {}) {
  const source = new EventSource("/api/events");
  source.addEventListener("status", (message) => {
    const status = JSON.parse(message.data);
    if (status.connected) {
      setStatus(status.height ? `Live · height ${status.height}` : "Live", "live");
    } else {
      setStatus(`Node unreachable, reconnecting… ${status.error || ""}`.trim(), "down");
    }
    onStatus(status);
  });
  source.addEventListener("block", (message) => {
    const block = JSON.parse(message.data);
    setStatus(`Live · height ${block.height} · ${block.time_utc}`, "live");
    document.body.dataset.height = String(block.height);
    onBlock(block);
  });
  source.addEventListener("error", () => setStatus("Connection to the dashboard lost, retrying…", "down"));
  return source;
}

// Runs `task` now, and once more after it if asked again meanwhile (blocks can outpace reads).
export function coalesced(task) {
  let running = false;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        try {
          await task();
          showError("");
        } catch (error) {
          showError(error.message);
        }
      } while (again);
    } finally {
      running = false;
    }
  };
  return run;
}

// A cell: a string, or {text, cls, title, node}.
function cell(tag, value) {
  const el = document.createElement(tag);
  if (value && typeof value === "object" && !(value instanceof Node)) {
    if (value.node) el.append(value.node);
    else el.textContent = value.text ?? "";
    if (value.cls) el.className = value.cls;
    if (value.title) el.title = value.title;
    if (value.header) el.scope = "row";
  } else if (value instanceof Node) {
    el.append(value);
  } else {
    el.textContent = value ?? "";
  }
  return el;
}

// Fill a table body; `columns` map a row to cells. `key` marks rows seen before, so new ones
// are highlighted briefly.
export function fillTable(table, rows, columns, emptyText, key = null) {
  const body = table.tBodies[0];
  const seen = new Set((table.dataset.keys || "").split(",").filter(Boolean));
  const keys = [];
  const fresh = [];
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell("td", emptyText);
    td.colSpan = table.tHead ? table.tHead.rows[0]?.cells.length || 1 : 1;
    td.className = "empty";
    tr.append(td);
    body.append(tr);
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    columns.forEach((column, index) => {
      const value = column(row);
      const isHeader = index === 0 && value && typeof value === "object" && value.header;
      tr.append(cell(isHeader ? "th" : "td", value));
    });
    if (key) {
      const k = String(key(row));
      keys.push(k);
      tr.dataset.key = k;
      if (table.dataset.keys !== undefined && !seen.has(k)) {
        tr.classList.add("fresh");
        fresh.push(tr);
      }
    }
    body.append(tr);
  }
  if (key) table.dataset.keys = keys.join(",");
  if (fresh.length) setTimeout(() => fresh.forEach((tr) => tr.classList.remove("fresh")), 4000);
  return fresh.length;
}

export function facts(dl, entries) {
  dl.replaceChildren();
  for (const [term, value, cls] of entries) {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value ?? "—";
    if (cls) dd.className = cls;
    div.append(dt, dd);
    dl.append(div);
  }
}

export function setOptions(select, items, value) {
  const current = [...select.options].map((o) => `${o.value}\u0000${o.textContent}`).join("\u0001");
  const wanted = items.map((i) => `${i.value}\u0000${i.label}`).join("\u0001");
  if (current !== wanted) {
    select.replaceChildren(...items.map((item) => {
      const option = document.createElement("option");
      option.value = item.value;
      option.textContent = item.label;
      return option;
    }));
  }
  select.value = value ?? "";
}

// URL state: the page's choices live in the query string (shareable, back button), updated
// without reloading.
export function readParams() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

export function writeParams(params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const url = query.toString() ? `${location.pathname}?${query}` : location.pathname;
  history.replaceState(null, "", url);
}

export function party(p) {
  return { text: p.label, title: p.id };
}

// A uPlot chart that follows its container's width. Without the library (not installed)
// the figure says so and the tables carry the figures.
export function lineChart(container, makeOptions) {
  if (typeof window.uPlot !== "function") {
    container.textContent = "Chart library not installed.";
    return { update() {} };
  }
  let plot = null;
  let last = null;
  const width = () => Math.max(280, Math.floor(container.clientWidth || 600));
  const height = () => (window.innerWidth < 600 ? 220 : 280);
  const observer = new ResizeObserver(() => {
    if (plot) plot.setSize({ width: width(), height: height() });
  });
  observer.observe(container);
  return {
    update(data, points) {
      const shape = JSON.stringify(data.length);
      if (!plot || last !== shape) {
        if (plot) plot.destroy();
        plot = new window.uPlot({ legend: { live: false }, ...makeOptions(), width: width(), height: height() }, data, container);
        last = shape;
      } else {
        plot.setData(data);
      }
      container.dataset.points = String(points);
      container.dataset.updates = String(Number(container.dataset.updates || 0) + 1);
    },
  };
}

export const COLORS = { bid: "#0b6130", ask: "#a11423", line: "#0a4fb4", bars: "#7fa7d9", second: "#a15c00" };

export function utcTime(seconds) {
  return new Date(seconds * 1000).toISOString().slice(11, 16) + "Z";
}

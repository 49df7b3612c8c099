// Market page: one zone's book in one slot, effective asks, trades, clearing, grid fees.
import {
  COLORS, announce, api, coalesced, facts, fillTable, lineChart, party, readParams, setOptions, subscribe,
  writeParams,
} from "./common.js";

const $ = (id) => document.getElementById(id);
const state = { ...readParams(), view: null, live: [] };
const LIVE_SHOWN = 20;

function renderLive() {
  fillTable($("live-trades"), state.live, [
    (t) => t.time_utc, (t) => t.slot_label, (t) => party(t.seller), (t) => party(t.buyer), (t) => t.route,
    (t) => t.quantity_fmt, (t) => t.price_fmt,
  ], "No trades since the dashboard started.", (t) => t.id);
}

const depth = lineChart($("depth-chart"), () => ({
  scales: { x: { time: false }, y: { range: (u, min, max) => [0, (max || 1) * 1.1] } },
  axes: [{ label: "price per kWh", values: (u, splits) => splits.map((v) => v.toFixed(4)) }, { label: "cumulative kWh" }],
  series: [
    {},
    { label: "bids (all-in)", stroke: COLORS.bid, fill: "rgba(11,97,48,0.12)", width: 2,
      paths: window.uPlot?.paths.stepped({ align: -1 }), points: { show: false } },
    { label: "asks", stroke: COLORS.ask, fill: "rgba(161,20,35,0.12)", width: 2,
      paths: window.uPlot?.paths.stepped({ align: 1 }), points: { show: false } },
  ],
}));

function depthData(view) {
  // Bids: quantity at or above each price (a buyer's demand curve); asks: at or below (supply).
  // Each side's last step runs on to the chart's edge so a single level still shows as a line.
  const levels = [...view.bids, ...view.asks].map((l) => l.price);
  if (!levels.length) return [[], [], []];
  const low = Math.min(...levels);
  const high = Math.max(...levels);
  const pad = Math.max((high - low) * 0.1, high * 0.02, 0.001);
  const prices = [...new Set([low - pad, ...levels, high + pad])].sort((a, b) => a - b);
  const side = (rows, atOrAbove) => prices.map((p) => {
    const reached = rows.filter((l) => (atOrAbove ? l.price >= p : l.price <= p));
    if (!reached.length) return null;
    return reached.reduce((sum, l) => sum + l.quantity_kwh, 0);
  });
  return [prices, side(view.bids, true), side(view.asks, false)];
}

function render(view) {
  state.view = view;
  setOptions($("zone"), view.zones.map((z) => ({ value: z, label: z })), view.zone);
  setOptions($("slot"), view.slots.map((s) => ({ value: String(s.slot), label: s.label })), String(view.slot));
  document.querySelectorAll(".zone-name").forEach((el) => { el.textContent = view.zone || "—"; });
  const gate = $("slot-info");
  gate.replaceChildren();
  const status = document.createElement("span");
  status.className = view.gate_open ? "gate-open" : "gate-closed";
  status.textContent = view.gate_open ? "Gate open" : "Gate closed";
  gate.append(status, ` · gate closes ${view.gate_closes} · ${view.matching} · chain ${view.chain_id}, height ${view.height}`);
  $("matching-mode").textContent = `Matching: ${view.matching}.`;
  if (view.message) {
    facts($("best"), [["Market", view.message]]);
    return;
  }
  const ask = view.best_ask;
  const bid = view.best_bid;
  facts($("best"), [
    [`Best ask for a buyer in ${view.zone}`, ask ? `${ask.effective_fmt} (${ask.price_fmt} + fee ${ask.fee_fmt}, ${ask.quantity_fmt} from ${ask.zone}${ask.origin ? ", " + ask.origin : ""})` : "none", "ask"],
    [`Best bid in ${view.zone}`, bid ? `${bid.price_fmt} for ${bid.quantity_fmt}` : "none", "bid"],
    ["Trades in this slot", String(view.trade_count)],
  ]);
  const level = (cls) => [(l) => ({ text: l.price_fmt, cls }), (l) => l.quantity_fmt, (l) => String(l.orders), (l) => l.cumulative_fmt];
  fillTable($("bids"), view.bids, level("bid"), "No bids in this book.", (l) => `${l.price_fmt}:${l.quantity_fmt}`);
  fillTable($("asks"), view.asks, level("ask"), "No asks in this book.", (l) => `${l.price_fmt}:${l.quantity_fmt}`);
  fillTable($("effective"), view.effective_asks, [
    (a) => ({ text: a.effective_fmt, cls: "ask" }), (a) => a.zone, (a) => a.price_fmt, (a) => a.fee_fmt,
    (a) => a.quantity_fmt, (a) => a.cumulative_fmt,
  ], "No asks in any zone for this slot.");
  state.live = view.recent_trades;
  renderLive();
  const fresh = fillTable($("trades"), view.trades, [
    (t) => String(t.id), (t) => t.time_utc, (t) => party(t.seller), (t) => party(t.buyer), (t) => t.route,
    (t) => t.quantity_fmt, (t) => t.price_fmt, (t) => t.fee_fmt, (t) => t.origin, (t) => t.mechanism,
  ], "No trades in this slot yet.", (t) => t.id);
  $("trade-count").textContent = `${view.trade_count} trade(s) in this slot; the newest ${view.trades.length} shown.`;
  if (fresh) announce(`${fresh} new trade(s) in slot ${view.slot_label}`);
  fillTable($("clearing"), view.clearing, [
    (c) => c.zone, (c) => c.price_fmt, (c) => c.volume_fmt, (c) => c.mechanism, (c) => String(c.height),
    (c) => c.classes.join("; ") || "—",
  ], "No price formed in this slot yet.");
  const fees = $("fees");
  const head = document.createElement("tr");
  const corner = document.createElement("th");
  corner.scope = "col";
  corner.textContent = "from \\ to";
  head.append(corner, ...view.fees.zones.map((z) => {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = z;
    return th;
  }));
  fees.tHead.replaceChildren(head);
  fillTable(fees, view.fees.rows, [(r) => ({ text: r.from, header: true }), ...view.fees.zones.map((_, i) => (r) => r.fees[i])],
    "No zones yet.");
  const data = depthData(view);
  depth.update(data, data[0].length);
}

const refresh = coalesced(async () => {
  render(await api("/api/market", { zone: state.zone, slot: state.slot }));
});

function choose(changes) {
  Object.assign(state, changes);
  writeParams({ zone: state.zone, slot: state.slot });
  refresh();
}

$("zone").addEventListener("change", (e) => choose({ zone: e.target.value }));
$("slot").addEventListener("change", (e) => choose({ slot: e.target.value }));
$("controls").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
for (const [id, step] of [["prev-slot", -1], ["next-slot", 1]]) {
  $(id).addEventListener("click", () => {
    const view = state.view;
    if (view) choose({ zone: view.zone, slot: String(view.slot + step * view.slot_length_s) });
  });
}

subscribe((block) => {
  if (block.trades.length) {
    // Shown at once from the event itself; the slot's own tables follow with the re-read below.
    const ids = new Set(block.trades.map((t) => t.id));
    state.live = [...block.trades.slice().reverse(), ...state.live.filter((t) => !ids.has(t.id))].slice(0, LIVE_SHOWN);
    renderLive();
  }
  const view = state.view;
  // The book changes only with transactions or block events (expiry, auctions, settlement);
  // the gate's state also changes with time alone.
  const gatePassed = view && view.gate_open && block.time >= view.gate_closes_at;
  if (!view || block.changed || block.resync || gatePassed) refresh();
});
refresh();

// Prices page: volume-weighted price and volume per slot of one UTC day, per seller zone.
import { COLORS, api, coalesced, fillTable, lineChart, readParams, setOptions, subscribe, writeParams } from "./common.js";

const $ = (id) => document.getElementById(id);
const state = { ...readParams(), view: null };

const utc = (ts) => window.uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
const chart = lineChart($("price-chart"), () => ({
  tzDate: utc,
  scales: { x: { time: true }, price: { auto: true }, kwh: { auto: true, range: (u, min, max) => [0, Math.max(1, max)] } },
  axes: [
    {},
    { scale: "price", label: "price per kWh", stroke: COLORS.line },
    { scale: "kwh", side: 1, label: "kWh traded", grid: { show: false } },
  ],
  series: [
    { label: "slot (UTC)" },
    { label: "average price", scale: "price", stroke: COLORS.line, width: 2, spanGaps: false,
      points: { show: true, size: 6 } },
    { label: "volume", scale: "kwh", stroke: COLORS.bars, fill: "rgba(127,167,217,0.45)",
      paths: window.uPlot?.paths.bars({ size: [0.7, 40] }), points: { show: false } },
  ],
}));

function render(view) {
  state.view = view;
  $("day").value = view.day;
  setOptions($("zone"), [{ value: "", label: "All zones" }, ...view.zones.map((z) => ({ value: z, label: z }))], view.zone);
  fillTable($("price-table"), view.rows, [
    (r) => r.slot_label, (r) => String(r.trades), (r) => r.volume_fmt, (r) => r.vwap_fmt, (r) => r.low_fmt, (r) => r.high_fmt,
  ], `No trades on ${view.day}${view.zone ? " by sellers in " + view.zone : ""}.`, (r) => `${r.slot}:${r.trades}`);
  chart.update([view.chart.x, view.chart.vwap, view.chart.volume_kwh], view.slots_with_trades);
}

const refresh = coalesced(async () => {
  render(await api("/api/prices", { day: state.day, zone: state.zone }));
});

function choose(changes) {
  Object.assign(state, changes);
  writeParams({ day: state.day, zone: state.zone });
  refresh();
}

$("day").addEventListener("change", (e) => choose({ day: e.target.value }));
$("zone").addEventListener("change", (e) => choose({ zone: e.target.value }));
$("controls").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
$("prev-day").addEventListener("click", () => state.view && choose({ day: state.view.previous_day }));
$("next-day").addEventListener("click", () => state.view && choose({ day: state.view.next_day }));

subscribe((block) => {
  const view = state.view;
  const first = view ? view.chart.x[0] : 0;
  const end = view ? first + 86400 : 0;
  if (!view || block.resync || block.trade_slots.some((s) => s >= first && s < end)) refresh();
});
refresh();

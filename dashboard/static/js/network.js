// Network page: validators and signing, node heights and app-hash agreement, block timing, mempool.
import { COLORS, api, coalesced, facts, fillTable, lineChart, subscribe } from "./common.js";

const $ = (id) => document.getElementById(id);
const utc = (ts) => window.uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");

const timing = lineChart($("timing-chart"), () => ({
  tzDate: utc,
  axes: [{}, { label: "seconds" }],
  series: [
    { label: "block time (UTC)" },
    { label: "block interval (s)", stroke: COLORS.line, width: 2, points: { show: false } },
    { label: "commit latency (s)", stroke: COLORS.second, width: 2, points: { show: false } },
  ],
}));
const mempool = lineChart($("mempool-chart"), () => ({
  tzDate: utc,
  axes: [{}, { label: "transactions" }],
  series: [
    { label: "block time (UTC)" },
    { label: "mempool size", stroke: COLORS.ask, width: 2, points: { show: false } },
    { label: "txs in block", stroke: COLORS.bars, fill: "rgba(127,167,217,0.45)", paths: window.uPlot?.paths.bars({ size: [0.8, 12] }) },
  ],
}));

const seconds = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(3)} s`);

function render(view) {
  facts($("summary"), [
    ["Height", String(view.height)], ["Last block (UTC)", view.time_utc],
    ["Median block interval", seconds(view.median_interval_s)],
    ["Median commit latency", seconds(view.median_latency_s)],
    ["Mempool", view.mempool === null ? "—" : `${view.mempool} tx`],
    ["Validators", `${view.validators.length} (total power ${view.total_power})`],
  ]);
  const agreement = view.agreement;
  const el = $("agreement");
  if (agreement.agree === null) {
    el.dataset.agree = "false";
    el.textContent = "No node answers.";
  } else {
    el.dataset.agree = String(agreement.agree);
    const reach = agreement.compared === agreement.nodes ? `All ${agreement.nodes} node(s)` : `${agreement.compared} of ${agreement.nodes} nodes (the others do not answer)`;
    el.textContent = agreement.agree
      ? `${reach} agree on the app hash at height ${agreement.height}.`
      : `App hashes DIFFER at height ${agreement.height}: the nodes do not hold the same state.`;
  }
  const hashes = Object.fromEntries(agreement.hashes.map((h) => [h.url, h.app_hash]));
  fillTable($("nodes"), view.nodes, [
    (n) => ({ text: n.url, header: true }), (n) => (n.reachable ? n.moniker : { text: "unreachable", cls: "flag-absent", title: n.error }),
    (n) => (n.reachable ? String(n.height) : "—"), (n) => ({ text: hashes[n.url] ?? "—", cls: "mono" }),
    (n) => (n.reachable ? (n.catching_up ? "yes" : "no") : "—"),
  ], "No nodes.");
  fillTable($("validators"), view.validators, [
    (v) => ({ text: v.name || "(not an operator of the app)", header: true }), (v) => ({ text: v.address, cls: "mono" }),
    (v) => String(v.power), (v) => v.share, (v) => ({ text: v.last_commit, cls: `flag-${v.last_commit}` }),
    (v) => `${v.missed} of ${v.window}`,
  ], "No validators.");
  fillTable($("blocks"), view.blocks, [
    (b) => String(b.height), (b) => b.time_utc, (b) => String(b.txs), (b) => b.interval, (b) => b.latency, (b) => b.mempool,
  ], "No blocks seen yet.", (b) => b.height);
  const c = view.chart;
  timing.update([c.x, c.interval_s, c.latency_s], c.x.length);
  mempool.update([c.x, c.mempool, c.txs], c.x.length);
}

const refresh = coalesced(async () => render(await api("/api/network")));
subscribe(() => refresh());
refresh();

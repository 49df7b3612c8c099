// Settlement page: the day's settled slots, one slot's reports, a participant's statement.
import { announce, api, coalesced, facts, fillTable, party, readParams, setOptions, subscribe, writeParams } from "./common.js";

const $ = (id) => document.getElementById(id);
const state = { ...readParams(), view: null };

function slotButton(row) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Show";
  button.setAttribute("aria-label", `Show the reports of slot ${row.slot_label}`);
  button.addEventListener("click", () => choose({ slot: String(row.slot) }));
  return { node: button };
}

function render(view) {
  state.view = view;
  $("day").value = view.day;
  $("window-info").textContent = `Slots are settled once their readings window (${view.settlement_window}) has passed. Chain ${view.chain_id}, height ${view.height}.`;
  fillTable($("slots"), view.slots, [
    (s) => ({ text: s.slot_label, header: true }), (s) => String(s.participants), (s) => s.shortfall_fmt, (s) => s.surplus_fmt,
    (s) => s.charges_fmt, (s) => s.credits_fmt, (s) => s.debt_fmt, (s) => (s.complete ? "yes" : "in progress"), slotButton,
  ], `No slot of ${view.day} is settled yet.`, (s) => `${s.slot}:${s.participants}:${s.complete}`);
  const chosen = view.selected;
  $("report-slot").textContent = chosen ? chosen.slot_label : "—";
  fillTable($("reports"), chosen ? chosen.reports : [], [
    (r) => ({ ...party(r.participant), header: true }), (r) => r.traded_fmt, (r) => r.delivered_fmt,
    (r) => ({ text: r.deviation_fmt, cls: r.deviation_wh < 0 ? "debit" : "" }), (r) => r.charge_fmt, (r) => r.credit_fmt,
    (r) => r.collateral_used_fmt, (r) => r.debt_added_fmt,
  ], chosen ? `Slot ${chosen.slot_label} is not settled yet.` : "Choose a settled slot above.");
  const options = [{ value: "", label: "Choose…" }, ...view.participants.map((p) => ({ value: p.name || p.id, label: p.label }))];
  setOptions($("account"), options, state.account || "");
}

function renderParticipant(view) {
  $("participant-view").hidden = false;
  const a = view.account;
  facts($("account-facts"), [
    ["Participant", a.name ? `${a.name} (${a.id})` : a.id], ["Role and zone", `${a.role}, ${a.zone}`],
    ["Balance", a.balance_fmt], ["Free", a.free_fmt], ["Locked", a.locked_fmt], ["Debt", a.debt_fmt],
  ]);
  fillTable($("participant-reports"), view.reports, [
    (r) => ({ text: r.slot_label, header: true }), (r) => r.traded_fmt, (r) => r.delivered_fmt, (r) => r.deviation_fmt,
    (r) => r.charge_fmt, (r) => r.credit_fmt, (r) => r.debt_added_fmt,
  ], "No settlement reports for this participant yet.");
  fillTable($("statement"), view.statement, [
    (l) => l.time_utc, (l) => String(l.height), (l) => l.kind, (l) => ({ text: l.amount_fmt, cls: l.credit ? "credit" : "debit" }),
    (l) => l.reference,
  ], `No money movements from ${view.from} to ${view.to}.`);
  $("statement-total").textContent = `${view.statement.length} line(s) from ${view.from} to ${view.to}, net ${view.statement_total_fmt}${view.truncated ? " (truncated: narrow the period)" : ""}.`;
  const link = $("csv-link");
  const query = new URLSearchParams({ account: state.account, from: view.from, to: view.to });
  link.href = `/api/statement.csv?${query}`;
  link.hidden = false;
  $("from").value = view.from;
  $("to").value = view.to;
}

const refresh = coalesced(async () => {
  render(await api("/api/settlement", { day: state.day, slot: state.slot }));
  if (state.account) renderParticipant(await api("/api/participant", { account: state.account, from: state.from, to: state.to }));
});

function choose(changes) {
  Object.assign(state, changes);
  writeParams({ day: state.day, slot: state.slot, account: state.account, from: state.from, to: state.to });
  refresh();
}

$("day").addEventListener("change", (e) => choose({ day: e.target.value, slot: "" }));
$("controls").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
$("prev-day").addEventListener("click", () => state.view && choose({ day: state.view.previous_day, slot: "" }));
$("next-day").addEventListener("click", () => state.view && choose({ day: state.view.next_day, slot: "" }));
$("participant-form").addEventListener("submit", (e) => {
  e.preventDefault();
  choose({ account: $("account").value, from: $("from").value, to: $("to").value });
  announce("Statement updated");
});

subscribe((block) => {
  if (!state.view || block.resync || block.settled_slots.length || (state.account && block.changed)) refresh();
});
refresh();

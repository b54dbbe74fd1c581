// One line per waterfall event (liquidation, backstop fill, fee, insurance draw, ADL, socialized
// loss), amounts in human units. Event shapes are the clearing application's (`attrs`).
import { accountLink, el } from "./dom.js";
import { percent } from "./units.js";

export const FEED_QUERIES = [
  "tm.event='Liquidation'",
  "tm.event='InsuranceFund'",
  "tm.event='Deleverage'",
  "tm.event='Clearing' AND clearing.type='socialized_loss'",
];

const KINDS = new Set(["liquidation", "liquidation_fill", "liquidation_fee", "insurance_cover",
  "deleverage", "socialized_loss", "liquidation_done"]);

const abs = (v) => { const n = BigInt(v); return n < 0n ? -n : n; };

function describe(kind, a, units) {
  const market = a.market !== undefined ? String(a.market) : "";
  switch (kind) {
    case "liquidation":
      return ["LIQUIDATION", accountLink(a.account), ` equity ${units.money(a.equity)} < maintenance margin ${units.money(a.mmr)}`];
    case "liquidation_fill":
      return ["backstop fill", accountLink(a.counterparty),
        ` takes ${units.size(market, abs(a.size))} of ${market} at ${units.price(market, a.oracle_price)} - ${percent(a.discount_ppm, 1)}`,
        " from ", accountLink(a.account)];
    case "liquidation_fee":
      return ["liquidation fee", accountLink(a.account), ` pays ${units.money(a.amount)} to the insurance fund (now ${units.money(a.fund)})`];
    case "insurance_cover":
      return ["insurance draw", accountLink(a.account), ` deficit covered with ${units.money(a.amount)} (fund left ${units.money(a.fund_left)})`];
    case "deleverage": {
      const charge = BigInt(a.charge || 0);
      return ["AUTO-DELEVERAGE", accountLink(a.counterparty),
        ` takes over ${units.size(market, abs(a.size))} of ${market} at ${units.price(market, a.oracle_price)}`
        + (charge ? `, bearing ${units.money(charge)} of the loss` : ""), " from ", accountLink(a.account)];
    }
    case "socialized_loss":
      return ["SOCIALIZED LOSS", accountLink(a.account), ` ${units.money(a.amount)} nobody could absorb (total ${units.money(a.total)})`];
    case "liquidation_done":
      return ["liquidation done", accountLink(a.account), ` equity ${units.money(a.equity)}, ${a.positions} position(s) left`];
    default:
      return [kind, ""];
  }
}

/** The feed line of one event (`{type, attrs}`) at `height`, or null for kinds not shown. */
export function feedItem(height, ev, units) {
  const kind = String(ev.type);
  if (!KINDS.has(kind)) return null;
  const [label, ...parts] = describe(kind, ev.attrs || {}, units);
  return el("li", { className: `event ${kind}`, data: { kind, height } },
    el("span", { className: "height", text: `#${height}` }),
    el("span", { className: "kind", text: label }), " ", ...parts);
}

// The account page (`#account=<address>`): collateral, positions with liquidation prices, margin
// used and free, and the account's txs and clearing events from live subscriptions.
import { txOfEvent } from "./chain.js";
import { el, prepend, rows, show } from "./dom.js";
import { percent } from "./units.js";

const ADDRESS = /^clr1[02-9ac-hj-np-z]{38}$/;
const ACTIVITY_LIMIT = 50;
const PPM = 1000000n;

/** The address a location hash names, or null. */
export function accountFromHash(hash) {
  const match = /^#account=(.*)$/.exec(hash);
  return match ? decodeURIComponent(match[1]) : null;
}

/**
 * The mark price of `market` at which the account's equity meets its maintenance margin, other
 * prices unchanged; null if no price does (a position equity cannot lose enough on).
 *
 * Equity moves by size * mult * dP and MMR by |size| * mult * mmf * dP, so
 * P* = P + (MMR - equity) / (mult * (size - |size| * mmf)), in the market's price units
 * (rounded toward the current price: the shown price is reached no later than the real one).
 */
export function liquidationPrice(position, market, health) {
  const size = BigInt(position.size);
  const price = BigInt(position.oracle_price);
  const mult = BigInt(market.value_multiplier);
  const mmf = BigInt(market.maintenance_margin_ppm);
  const absSize = size < 0n ? -size : size;
  const num = (BigInt(health.maintenance_margin) - BigInt(health.equity)) * PPM;
  const den = mult * (size * PPM - absSize * mmf);
  if (den === 0n) return null;
  const liq = price + num / den; // BigInt division truncates toward zero: toward P
  return liq > 0n ? liq : null;
}

export class AccountView {
  constructor(rpc, units, onError) {
    this.rpc = rpc;
    this.units = units;
    this.onError = onError;
    this.address = null;
    this.queries = [];
  }

  /** Show `address` (or nothing, for null); subscribes to its txs and clearing events. */
  async open(address) {
    if (address === this.address) return;
    for (const query of this.queries) this.rpc.unsubscribe(query);
    this.queries = [];
    this.address = address;
    document.getElementById("acct-activity").replaceChildren();
    if (address === null) return;
    show("account-address", address);
    if (!ADDRESS.test(address)) {
      show("account-status", "not a clearchain address (clr1 followed by 38 characters)");
      return;
    }
    show("account-status", "loading");
    const txQuery = `tm.event='Tx' AND tx.account='${address}'`;
    const eventQuery = `tm.event='Clearing' AND clearing.account='${address}'`;
    this.queries = [txQuery, eventQuery];
    await Promise.all([
      this.rpc.subscribe(txQuery, (r) => this.onTx(r)),
      this.rpc.subscribe(eventQuery, (r) => this.onEvent(r)),
    ]).catch((error) => this.onError(error));
  }

  /** The calls a refresh adds to its batch. */
  calls() {
    return this.address && ADDRESS.test(this.address) ? [["account", { address: this.address }]] : [];
  }

  /** Render the `account` answer (or its error: an account never funded, or emptied). */
  render(answer) {
    if (!answer) return;
    if (answer.error) {
      show("account-status", answer.error.code === -32001
        ? "no such account in the current state (never funded, or emptied by the waterfall)"
        : `error: ${answer.error.message}`);
      for (const id of ["acct-equity", "acct-quote", "acct-margin-used", "acct-margin-free", "acct-mmr", "acct-ratio"]) show(id, "-");
      rows("acct-collateral", []);
      rows("acct-positions", []);
      return;
    }
    const a = answer.result;
    const u = this.units;
    const h = a.health;
    show("account-status", h.liquidatable ? "LIQUIDATABLE: equity below maintenance margin" : "");
    show("acct-equity", u.money(h.equity), h.equity);
    show("acct-quote", u.money(a.quote), a.quote);
    show("acct-margin-used", u.money(h.initial_margin), h.initial_margin);
    show("acct-margin-free", u.money(h.free_collateral), h.free_collateral);
    show("acct-mmr", u.money(h.maintenance_margin), h.maintenance_margin);
    show("acct-ratio", h.margin_ratio_ppm === null ? "no position" : percent(h.margin_ratio_ppm, 1), h.margin_ratio_ppm);
    rows("acct-collateral", Object.entries(a.collateral).map(([symbol, amount]) =>
      el("tr", {}, el("td", { text: symbol }), el("td", { text: u.asset(symbol, amount), data: { raw: amount } }))));
    rows("acct-positions", a.positions.map((p) => {
      const market = u.markets.get(String(p.market));
      const size = BigInt(p.size);
      const entry = size && market ? BigInt(p.cost) / (size * BigInt(market.value_multiplier)) : null;
      const liq = market ? liquidationPrice(p, market, h) : null;
      return el("tr", { data: { market: p.market } },
        el("td", { text: p.market }),
        el("td", { text: u.size(p.market, p.size), data: { raw: p.size } }),
        el("td", { text: entry === null ? "-" : u.price(p.market, entry) }),
        el("td", { text: u.price(p.market, p.oracle_price), data: { raw: p.oracle_price } }),
        el("td", { text: u.money(p.unrealized_pnl), data: { raw: p.unrealized_pnl } }),
        el("td", { className: "liq-price", text: liq === null ? "none" : u.price(p.market, liq), data: { raw: liq === null ? "" : liq } }));
    }));
  }

  onTx(result) {
    const tx = txOfEvent(result.data, result.events);
    const kind = ((result.events || {})["tx.type"] || ["tx"])[0];
    prepend("acct-activity", el("li", { className: tx.code === "0" ? "tx ok" : "tx rejected", data: { kind: "tx", height: tx.height } },
      el("span", { className: "height", text: `#${tx.height}` }),
      el("span", { className: "kind", text: kind }),
      ` ${tx.hash.slice(0, 16)}… `,
      el("span", { text: tx.code === "0" ? "ok" : `rejected (code ${tx.code}): ${tx.log}` })), ACTIVITY_LIMIT);
  }

  onEvent(result) {
    const { height, event } = result.data.value;
    if (!event || event.type === "trade") return; // trades show as their tx
    const attrs = Object.entries(event.attrs || {}).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
    prepend("acct-activity", el("li", { className: `event ${event.type}`, data: { kind: event.type, height } },
      el("span", { className: "height", text: `#${height}` }),
      el("span", { className: "kind", text: event.type }), ` ${attrs}`), ACTIVITY_LIMIT);
  }
}

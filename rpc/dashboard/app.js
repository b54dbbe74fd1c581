// The dashboard: live over the node's WebSocket. NewBlock drives everything; each block is
// followed by at most one refresh batch per second (markets, fund, mempool, at-risk page, and
// every few seconds status and validators), so the page's cost does not grow with the block rate.
import { AccountView, accountFromHash } from "./account.js";
import {
  blockHeight, blockOfAnswer, blockTimeMs, blockTxCount, lastCommitSigners, mempoolSize, newBlockOf,
  statusCatchingUp, statusChainId, statusHeight, validatorList,
} from "./chain.js";
import { accountLink, el, prepend, rows, show } from "./dom.js";
import { FEED_QUERIES, feedItem } from "./feed.js";
import { Rpc } from "./rpc.js";
import { Units, percent, scaled } from "./units.js";

const REFRESH_MS = 1000; // at most one refresh batch per second
const SLOW_REFRESH_MS = 5000; // status (catching up) and the validator set
const MAX_POINTS = 300; // chart history, per series
const RATE_BLOCKS = 20; // rates and block interval over the last blocks
const FEED_LIMIT = 100;
const AT_RISK_PAGE = 10;
const FEED_BACKFILL_BLOCKS = 500;

// JS time per NewBlock handled (blockMs) and per refresh drawn (renderMs), the last 1000 each
const stats = { blocks: 0, refreshes: 0, blockMs: [], renderMs: [], requests: 0, messages: 0 };
window.clearchainDashboard = stats; // read by the browser test and by anyone curious

const state = {
  height: 0,
  blocks: [], // {height, timeMs, txs}
  trades: new Map(), // height -> trades
  signers: new Set(),
  validators: [],
  series: new Map(), // market -> {x, mark, index}
  fund: { x: [], y: [] },
  market: null,
  lastSlow: 0,
  units: null,
};

const rpc = new Rpc(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/websocket`,
  (s) => show("connection", s === "open" ? "live" : "reconnecting"));
let account = null;
let priceChart = null;
let fundChart = null;

function note(error) {
  show("connection", `error: ${error.message || error}`);
}

// --- timing: JS time spent per NewBlock (block handling + the refresh it causes) ---------------

function timed(list, name, fn) {
  const start = performance.now();
  performance.mark(`${name}-start`);
  try {
    return fn();
  } finally {
    performance.measure(name, `${name}-start`);
    list.push(performance.now() - start);
    if (list.length > 1000) list.shift();
  }
}

// --- charts ---------------------------------------------------------------------------------

function chart(id, series, height) {
  const node = document.getElementById(id);
  const opts = {
    width: Math.max(300, node.clientWidth), height,
    scales: { x: { time: false } },
    axes: [{ label: "height" }, { size: 80 }],
    series: [{ label: "height" }, ...series],
  };
  return new window.uPlot(opts, [[], ...series.map(() => [])], node);
}

function push(list, value) {
  list.push(value);
  if (list.length > MAX_POINTS) list.shift();
}

function drawPrices() {
  const s = state.series.get(state.market);
  if (!priceChart || !s) return;
  priceChart.setData([s.x, s.mark, s.index]);
  document.getElementById("price-chart").dataset.points = String(s.x.length);
}

function drawFund() {
  if (!fundChart) return;
  fundChart.setData([state.fund.x, state.fund.y]);
  document.getElementById("insurance-chart").dataset.points = String(state.fund.x.length);
}

// --- chain ----------------------------------------------------------------------------------

function drawRates() {
  const b = state.blocks;
  show("height", state.height.toLocaleString("en-US"), state.height);
  if (b.length < 2) return;
  const seconds = (b[b.length - 1].timeMs - b[0].timeMs) / 1000;
  if (seconds <= 0) return;
  const txs = b.slice(1).reduce((n, x) => n + x.txs, 0);
  const trades = b.slice(1).reduce((n, x) => n + (state.trades.get(x.height) || 0), 0);
  show("interval", `${(seconds / (b.length - 1)).toFixed(2)} s`);
  show("txs-rate", (txs / seconds).toFixed(1));
  show("trades-rate", (trades / seconds).toFixed(1));
}

function drawValidators() {
  rows("validators", state.validators.map((v) => {
    const signed = state.signers.has(v.address);
    return el("tr", { data: { address: v.address } },
      el("td", { text: v.address, className: "address" }),
      el("td", { text: v.power.toLocaleString("en-US") }),
      el("td", { text: signed ? "yes" : "no", className: signed ? "ok" : "bad" }));
  }));
}

function onNewBlock(result) {
  timed(stats.blockMs, "dashboard-block", () => {
    const block = newBlockOf(result.data);
    const height = blockHeight(block);
    state.height = Math.max(state.height, height);
    state.blocks.push({ height, timeMs: blockTimeMs(block), txs: blockTxCount(block) });
    if (state.blocks.length > RATE_BLOCKS + 1) state.blocks.shift();
    for (const h of state.trades.keys()) if (h < height - RATE_BLOCKS - 1) state.trades.delete(h);
    state.signers = lastCommitSigners(block);
    drawRates();
    drawValidators();
    stats.blocks += 1;
  });
  scheduleRefresh();
}

function onTrade(result) {
  const height = Number(result.data.value.height);
  state.trades.set(height, (state.trades.get(height) || 0) + 1);
}

// --- markets and clearing -------------------------------------------------------------------

const BREAKER_TEXT = { normal: "moving freely", capped: "capped: risk-reducing only", halted: "HALTED" };

function drawMarkets(markets) {
  const u = state.units;
  u.setMarkets(markets);
  const select = document.getElementById("market-select");
  if (select.options.length !== markets.length) {
    select.replaceChildren(...markets.map((m) => el("option", { text: m.id })));
    select.value = state.market || markets[0].id;
  }
  state.market = state.market || (markets[0] && String(markets[0].id));
  for (const m of markets) {
    const id = String(m.id);
    if (!state.series.has(id)) state.series.set(id, { x: [], mark: [], index: [] });
    const s = state.series.get(id);
    if (s.x.length && s.x[s.x.length - 1] >= state.height) continue;
    push(s.x, state.height);
    push(s.mark, u.priceFloat(id, m.oracle_price));
    push(s.index, u.priceFloat(id, m.reported_price));
  }
  rows("market-table", markets.map((m) => {
    const id = String(m.id);
    const breaker = String(m.breaker);
    const text = BREAKER_TEXT[breaker] || breaker;
    return el("tr", { data: { market: id } },
      el("td", { text: id }),
      el("td", { text: u.price(id, m.oracle_price), data: { raw: m.oracle_price } }),
      el("td", { text: u.price(id, m.reported_price), data: { raw: m.reported_price } }),
      el("td", { text: `${percent(m.last_funding_rate_ppm, 4)} / ${Number(m.funding_interval_ms) / 3600000} h` }),
      el("td", { text: u.size(id, m.open_interest), data: { raw: m.open_interest } }),
      el("td", { text: m.status === "active" ? text : `${text}; market ${m.status}`, className: `breaker ${breaker}` }));
  }));
  drawPrices();
}

function drawFundFigures(fund) {
  const u = state.units;
  document.getElementById("insurance-chart").dataset.last = String(fund.insurance_fund);
  show("insurance", u.money(fund.insurance_fund), fund.insurance_fund);
  show("fee-pool", u.money(fund.fee_pool), fund.fee_pool);
  show("socialized", u.money(fund.socialized_loss), fund.socialized_loss);
  const f = state.fund;
  if (!f.x.length || f.x[f.x.length - 1] < state.height) {
    push(f.x, state.height);
    push(f.y, u.moneyFloat(fund.insurance_fund));
  }
  drawFund();
}

function drawAtRisk(page) {
  const u = state.units;
  rows("at-risk", page.accounts.map((a) => el("tr", { className: a.liquidatable ? "bad" : "" },
    el("td", {}, accountLink(a.address)),
    el("td", { text: u.money(a.equity), data: { raw: a.equity } }),
    el("td", { text: percent(a.margin_ratio_ppm, 1), data: { raw: a.margin_ratio_ppm } }),
    el("td", { text: a.liquidatable ? "liquidatable" : percent(a.distance_ppm, 1), data: { raw: a.distance_ppm } }))));
}

function drawFeed(height, ev) {
  const item = feedItem(height, ev, state.units);
  if (item) prepend("feed", item, FEED_LIMIT);
}

function onFeedEvent(result) {
  const { height, event } = result.data.value;
  drawFeed(height, event);
}

// --- the refresh: one batch, at most once per REFRESH_MS -------------------------------------

let refreshing = false;
let dirty = false;
let lastRefresh = 0;

function scheduleRefresh() {
  dirty = true;
  if (refreshing) return;
  refreshing = true;
  setTimeout(runRefresh, Math.max(0, lastRefresh + REFRESH_MS - Date.now()));
}

async function runRefresh() {
  dirty = false;
  lastRefresh = Date.now();
  try {
    await refresh();
  } catch (error) {
    note(error);
  } finally {
    refreshing = false;
    if (dirty) scheduleRefresh();
  }
}

async function refresh() {
  const slow = Date.now() - state.lastSlow >= SLOW_REFRESH_MS;
  const calls = [["markets"], ["insurance_fund"], ["num_unconfirmed_txs"], ["accounts_at_risk", { per_page: AT_RISK_PAGE }]];
  if (slow) calls.push(["status"], ["validators", { per_page: 100 }]);
  const accountCalls = account.calls();
  calls.push(...accountCalls);
  const answers = await rpc.batch(calls);
  timed(stats.renderMs, "dashboard-refresh", () => {
    const [markets, fund, mempool, atRisk] = answers;
    if (markets.result) drawMarkets(markets.result);
    if (fund.result) drawFundFigures(fund.result);
    if (mempool.result) {
      const size = mempoolSize(mempool.result);
      show("mempool", `${size.txs} txs, ${scaled(size.bytes, 0, 0)} bytes`);
    }
    if (atRisk.result) drawAtRisk(atRisk.result);
    let next = 4;
    if (slow) {
      const [status, validators] = answers.slice(4, 6);
      if (status.result) {
        show("catching-up", statusCatchingUp(status.result) ? "catching up" : "in sync");
        state.height = Math.max(state.height, statusHeight(status.result));
      }
      if (validators.result) {
        state.validators = validatorList(validators.result);
        drawValidators();
      }
      state.lastSlow = Date.now();
      next = 6;
    }
    if (accountCalls.length) account.render(answers[next]);
    stats.refreshes += 1;
  });
  stats.requests = rpc.requests;
  stats.messages = rpc.messages;
}

// --- routing: the overview, or #account=<address> -------------------------------------------

function route() {
  const address = accountFromHash(location.hash);
  document.getElementById("overview").hidden = address !== null;
  document.getElementById("account").hidden = address === null;
  account.open(address).then(() => scheduleRefresh(), note);
}

// --- start ------------------------------------------------------------------------------------

async function start() {
  await rpc.open();
  const [status, assets, markets, validators, latest] = await rpc.batch([
    ["status"], ["assets"], ["markets"], ["validators", { per_page: 100 }], ["block"]]);
  for (const answer of [status, assets, markets]) if (answer.error) throw answer.error;
  state.units = new Units(assets.result, markets.result);
  state.height = statusHeight(status.result);
  show("chain-id", statusChainId(status.result));
  show("catching-up", statusCatchingUp(status.result) ? "catching up" : "in sync");
  state.lastSlow = Date.now();
  if (validators.result) state.validators = validatorList(validators.result);
  if (latest.result) state.signers = lastCommitSigners(blockOfAnswer(latest.result));
  drawValidators();
  drawRates();
  priceChart = chart("price-chart", [
    { label: "mark", stroke: "#2563eb", width: 2 },
    { label: "index", stroke: "#d97706", width: 1, dash: [6, 4] }], 240);
  fundChart = chart("insurance-chart", [
    { label: `insurance fund (${state.units.quote.symbol})`, stroke: "#059669", fill: "rgba(5,150,105,0.12)", width: 2 }], 180);
  window.addEventListener("resize", () => {
    for (const [c, id] of [[priceChart, "price-chart"], [fundChart, "insurance-chart"]]) {
      c.setSize({ width: Math.max(300, document.getElementById(id).clientWidth), height: c.height });
    }
  });
  document.getElementById("market-select").addEventListener("change", (event) => {
    state.market = event.target.value;
    drawPrices();
  });
  document.getElementById("account-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = document.getElementById("account-input").value.trim();
    location.hash = text ? `account=${encodeURIComponent(text)}` : "";
  });
  account = new AccountView(rpc, state.units, note);
  await Promise.all([
    rpc.subscribe("tm.event='NewBlock'", onNewBlock),
    rpc.subscribe("tm.event='Trade'", onTrade),
    ...FEED_QUERIES.map((q) => rpc.subscribe(q, onFeedEvent)),
  ]);
  const backfill = await rpc.call("liquidations", {
    min_height: Math.max(1, state.height - FEED_BACKFILL_BLOCKS), per_page: FEED_LIMIT }).catch(() => null);
  if (backfill) for (const ev of backfill.liquidations) drawFeed(ev.height, ev);
  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "1";
}

start().catch(note);

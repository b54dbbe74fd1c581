// Human units from the chain's integers, exactly (BigInt, no float on the way to text).
//
// Quote amounts are micro-units of the quote asset (`assets`: decimals); a market's price 1 is
// 10^price_exponent quote units per base unit and its size 1 is 10^size_exponent base units
// (`markets`). Text is cut, never rounded up, to the shown decimals (toward zero), with
// thousands separators: what is shown is never more than what is held. Zeros pad to `shown`.

const GROUP = /\B(?=(\d{3})+(?!\d))/g;

/** `value * 10^exponent` as text with at most `shown` decimals (cut toward zero). */
export function scaled(value, exponent, shown) {
  let v = BigInt(value);
  const negative = v < 0n;
  if (negative) v = -v;
  let digits;
  let decimals;
  if (exponent >= 0) {
    digits = (v * 10n ** BigInt(exponent)).toString();
    decimals = 0;
  } else {
    digits = v.toString();
    decimals = -exponent;
  }
  digits = digits.padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals).replace(GROUP, ",");
  const fraction = digits.slice(digits.length - decimals).padEnd(shown, "0").slice(0, shown);
  const text = fraction.length ? `${whole}.${fraction}` : whole;
  return negative && /[1-9]/.test(text) ? `-${text}` : text;
}

/** Decimals worth showing for a price of a market: 2 at least, as many as its tick needs. */
export const priceDecimals = (market) => Math.max(2, -Number(market.price_exponent));

export class Units {
  /** `assets` answer and `markets` answer (list). */
  constructor(assets, markets) {
    this.quote = { symbol: String(assets.quote.symbol), decimals: Number(assets.quote.decimals) };
    this.collateral = new Map((assets.collateral || []).map((c) => [String(c.symbol), Number(c.decimals)]));
    this.markets = new Map();
    this.setMarkets(markets);
  }

  setMarkets(markets) {
    for (const m of markets) this.markets.set(String(m.id), m);
  }

  /** Quote micro-units as "12,345.67 USDC". */
  money(micro) {
    return `${scaled(micro, -this.quote.decimals, 2)} ${this.quote.symbol}`;
  }

  /** An amount of a collateral asset (or the quote asset) in its own decimals, all shown. */
  asset(symbol, amount) {
    const decimals = symbol === this.quote.symbol ? this.quote.decimals : this.collateral.get(symbol);
    if (decimals === undefined) return `${scaled(amount, 0, 0)} (raw) ${symbol}`;
    return `${scaled(amount, -decimals, decimals)} ${symbol}`;
  }

  /** A market's price as quote units per base unit: "50,000.00". */
  price(marketId, price) {
    const m = this.markets.get(marketId);
    if (!m) return scaled(price, 0, 0);
    return scaled(price, Number(m.price_exponent), priceDecimals(m));
  }

  /** A price as a float, for charts only. */
  priceFloat(marketId, price) {
    const m = this.markets.get(marketId);
    return Number(price) * 10 ** (m ? Number(m.price_exponent) : 0);
  }

  moneyFloat(micro) {
    return Number(micro) / 10 ** this.quote.decimals;
  }

  /** A market's size in base units: "1.25000 BTC". */
  size(marketId, size) {
    const m = this.markets.get(marketId);
    if (!m) return scaled(size, 0, 0);
    const exponent = Number(m.size_exponent);
    return `${scaled(size, exponent, Math.max(0, -exponent))} ${m.base_asset}`;
  }
}

/** Parts per million as a percentage: "12.34%". */
export const percent = (ppm, shown = 2) => `${scaled(ppm, -4, shown)}%`;

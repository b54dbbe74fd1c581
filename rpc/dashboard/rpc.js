// JSON-RPC 2.0 over the node's own WebSocket (/websocket): calls, batches and subscriptions
// on one connection. Reconnects with a growing pause (1 s to 10 s) and subscribes again.
// Counts what it sends (`requests`: JSON-RPC calls, `messages`: WebSocket frames) so the page's
// cost per block can be read.

const MIN_RETRY_MS = 1000;
const MAX_RETRY_MS = 10000;
const CALL_TIMEOUT_MS = 15000;

export class RpcError extends Error {
  constructor(error) {
    super(`${error.message}${error.data ? `: ${typeof error.data === "string" ? error.data : JSON.stringify(error.data)}` : ""}`);
    this.code = error.code;
  }
}

export class Rpc {
  constructor(url, onState) {
    this.url = url;
    this.onState = onState;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, timer}
    this.subscriptions = new Map(); // query -> handler(result)
    this.retryMs = MIN_RETRY_MS;
    this.requests = 0;
    this.messages = 0;
    this.opened = null;
  }

  /** Resolves once connected (and after every reconnect, `onState("open")`). */
  open() {
    if (this.opened) return this.opened;
    this.opened = new Promise((resolve) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => {
        this.retryMs = MIN_RETRY_MS;
        this.onState("open");
        for (const query of this.subscriptions.keys()) this._send({ method: "subscribe", params: { query } }).catch(() => {});
        resolve();
      };
      ws.onmessage = (event) => this._receive(event.data);
      ws.onclose = () => {
        this.onState("closed");
        for (const entry of this.pending.values()) {
          clearTimeout(entry.timer);
          entry.reject(new Error("connection closed"));
        }
        this.pending.clear();
        this.opened = null;
        setTimeout(() => this.open(), this.retryMs);
        this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
      };
    });
    return this.opened;
  }

  _request(method, params) {
    const id = this.nextId++;
    return { message: { jsonrpc: "2.0", id, method, params: params || {} }, id };
  }

  _wait(id) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error("no answer in time"));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  _send({ method, params }) {
    const { message, id } = this._request(method, params);
    const answer = this._wait(id);
    this.requests += 1;
    this.messages += 1;
    this.ws.send(JSON.stringify(message));
    return answer.then((reply) => {
      if (reply.error) throw new RpcError(reply.error);
      return reply.result;
    });
  }

  call(method, params) {
    return this._send({ method, params });
  }

  /** Several calls in one frame: resolves to [{result} | {error}] in the order given. */
  batch(calls) {
    const built = calls.map(([method, params]) => this._request(method, params));
    const answers = built.map(({ id }) => this._wait(id));
    this.requests += built.length;
    this.messages += 1;
    this.ws.send(JSON.stringify(built.map(({ message }) => message)));
    return Promise.all(answers.map((p) => p.then(
      (reply) => (reply.error ? { error: new RpcError(reply.error) } : { result: reply.result }),
      (error) => ({ error }),
    )));
  }

  subscribe(query, handler) {
    this.subscriptions.set(query, handler);
    return this._send({ method: "subscribe", params: { query } });
  }

  unsubscribe(query) {
    if (!this.subscriptions.delete(query)) return Promise.resolve();
    return this._send({ method: "unsubscribe", params: { query } }).catch(() => {});
  }

  _receive(text) {
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    for (const reply of Array.isArray(parsed) ? parsed : [parsed]) {
      const result = reply && reply.result;
      if (result && typeof result.query === "string" && result.data !== undefined) {
        const handler = this.subscriptions.get(result.query);
        if (handler) handler(result);
        continue;
      }
      const entry = this.pending.get(reply && reply.id);
      if (entry) {
        clearTimeout(entry.timer);
        this.pending.delete(reply.id);
        entry.resolve(reply);
      }
    }
  }
}

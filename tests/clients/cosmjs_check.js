// Drives a node through @cosmjs/tendermint-rpc's Comet38Client: every call it offers, the
// subscriptions, and the CometBFT methods cosmjs has no wrapper for (raw JSON-RPC).
//
//   node cosmjs_check.js <rpc url> <inputs.json>
//
// COSMJS_MODULES names the node_modules directory holding @cosmjs/tendermint-rpc.
// inputs.json: {"txs": {"sync", "async", "commit", "late"}: base64 signed txs,
//               "sender": "clr1...", "recipient": "clr1..."}
// Prints one JSON object: {"calls": [{"call", "ok", "detail"}]}. A call is ok when cosmjs
// decoded the answer without throwing and the decoded values say what the node did.
"use strict";

const path = require("path");
const fs = require("fs");

const modules = process.env.COSMJS_MODULES;
const rpc = require(path.join(modules, "@cosmjs/tendermint-rpc"));
const { toHex, fromBase64 } = require(path.join(modules, "@cosmjs/encoding"));

const [url, inputsPath] = process.argv.slice(2);
const inputs = JSON.parse(fs.readFileSync(inputsPath, "utf8"));
const calls = [];

function assert(condition, what) {
  if (!condition) throw new Error(`unexpected: ${what}`);
}

async function check(call, fn) {
  try {
    const detail = await fn();
    calls.push({ call, ok: true, detail: detail === undefined ? "" : String(detail) });
  } catch (error) {
    calls.push({ call, ok: false, detail: String(error && error.message ? error.message : error).slice(0, 300) });
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function firstEvent(stream, ms, what) {
  return withTimeout(new Promise((resolve, reject) => {
    const subscription = stream.subscribe({
      next: (event) => { subscription.unsubscribe(); resolve(event); },
      error: (error) => reject(error),
      complete: () => reject(new Error(`${what}: stream completed`)),
    });
  }), ms, what);
}

async function raw(method, params) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = await response.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

async function main() {
  let client;
  await check("connectComet picks Comet38Client", async () => {
    const picked = await rpc.connectComet(url);
    const is38 = rpc.isComet38Client(picked);
    picked.disconnect();
    assert(is38, "connectComet did not pick the 0.38 client");
  });
  client = await rpc.Comet38Client.connect(url);
  let ws;

  await check("health", () => client.health());
  let status;
  await check("status", async () => {
    status = await client.status();
    assert(status.nodeInfo.id.length === 20, "node id of 20 bytes");
    assert(status.syncInfo.latestBlockHeight >= 1, "a height");
    return `height ${status.syncInfo.latestBlockHeight}, version ${status.nodeInfo.version}`;
  });
  await check("genesis", async () => {
    const genesis = await client.genesis();
    assert(genesis.validators.length === 1, "one genesis validator");
    assert(genesis.appState && genesis.appState.quote_asset, "clearing genesis under app_state");
    return genesis.chainId;
  });
  await check("validators", async () => {
    const answer = await client.validators({});
    assert(answer.validators.length === 1 && answer.validators[0].pubkey.algorithm === "ed25519", "one ed25519 validator");
  });
  await check("validatorsAll", async () => {
    const answer = await client.validatorsAll();
    assert(answer.total === 1, "total 1");
  });
  await check("abciInfo", async () => {
    const info = await client.abciInfo();
    assert(info.lastBlockHeight >= 1, "last block height");
    return `${info.data} at ${info.lastBlockHeight}`;
  });

  // Submit the txs.
  let commitAnswer;
  await check("broadcastTxSync", async () => {
    const answer = await client.broadcastTxSync({ tx: fromBase64(inputs.txs.sync) });
    assert(answer.code === 0, `code ${answer.code}: ${answer.log}`);
  });
  await check("broadcastTxAsync", async () => {
    const answer = await client.broadcastTxAsync({ tx: fromBase64(inputs.txs.async) });
    assert(answer.hash.length === 32, "a 32-byte hash");
  });
  await check("numUnconfirmedTxs", async () => {
    const answer = await client.numUnconfirmedTxs();
    assert(answer.total >= 0, "a count");
  });
  await check("broadcastTxCommit", async () => {
    commitAnswer = await client.broadcastTxCommit({ tx: fromBase64(inputs.txs.commit) });
    assert(commitAnswer.checkTx.code === 0 && commitAnswer.txResult.code === 0,
      `codes ${commitAnswer.checkTx.code}/${commitAnswer.txResult && commitAnswer.txResult.code}`);
    assert(commitAnswer.txResult.events.some((e) => e.attributes.length > 0), "events with attributes");
    return `height ${commitAnswer.height}`;
  });
  const txHeight = commitAnswer ? commitAnswer.height : 1;

  await check("tx (hash as base64)", async () => {
    const found = await client.tx({ hash: commitAnswer.hash });
    assert(found.height === txHeight && found.result.code === 0, "the committed tx");
    const transfer = found.result.events.find((e) => e.type === "transfer");
    assert(transfer && transfer.attributes.some((a) => a.key === "sender" && a.value === inputs.sender),
      "a transfer event naming the sender");
  });
  await check("txSearch tx.height", async () => {
    const found = await client.txSearch({ query: `tx.height=${txHeight}` });
    assert(found.totalCount >= 1 && found.txs.every((t) => t.height === txHeight), "txs of that height");
  });
  await check("txSearch tx.hash", async () => {
    const found = await client.txSearch({ query: `tx.hash='${toHex(commitAnswer.hash).toUpperCase()}'` });
    assert(found.totalCount === 1, `one tx, got ${found.totalCount}`);
  });
  await check("txSearch message.sender", async () => {
    const found = await client.txSearch({ query: `message.sender='${inputs.sender}'` });
    assert(found.totalCount >= 1, `the sender's txs, got ${found.totalCount}`);
  });
  await check("txSearch clearing attribute", async () => {
    const found = await client.txSearch({ query: `transfer.to='${inputs.recipient}' AND tx.height>=1` });
    assert(found.totalCount >= 1, `transfers to the recipient, got ${found.totalCount}`);
  });
  await check("txSearchAll", async () => {
    const found = await client.txSearchAll({ query: `tx.height>=1`, per_page: 1 });
    assert(found.totalCount >= 1 && found.txs.length === found.totalCount, "every page");
  });
  await check("block (latest)", async () => {
    const answer = await client.block();
    assert(answer.blockId.hash.length === 32 && answer.block.header.height >= txHeight, "a block");
  });
  await check("block (tx height)", async () => {
    const answer = await client.block(txHeight);
    assert(answer.block.txs.length >= 1, "the tx in it");
    assert(answer.block.header.version.block === 11, "block protocol 11");
    return `${answer.block.txs.length} txs`;
  });
  await check("block 1", async () => {
    const answer = await client.block(1);
    assert(answer.block.lastCommit === null && answer.block.header.lastBlockId === null, "no last commit");
  });
  await check("blockResults", async () => {
    const answer = await client.blockResults(txHeight);
    assert(answer.results.length >= 1 && answer.results[0].events.length >= 1, "tx results with events");
  });
  await check("blockResults finalize_block_events", async () => {
    let found = false;
    for (let height = 1; height <= txHeight && !found; height += 1) {
      const answer = await client.blockResults(height);
      found = answer.finalizeBlockEvents.some((e) => e.attributes.length > 0);
    }
    assert(found, "a block-level event with attributes");
  });
  await check("blockchain", async () => {
    const answer = await client.blockchain(1, txHeight);
    assert(answer.blockMetas.length >= 1 && answer.blockMetas[0].header.height === txHeight, "metas");
  });
  await check("blockSearch", async () => {
    const answer = await client.blockSearch({ query: `block.height=${txHeight}` });
    assert(answer.totalCount === 1 && answer.blocks[0].block.header.height === txHeight, "the block");
  });
  await check("blockSearchAll", async () => {
    const answer = await client.blockSearchAll({ query: `block.height>=1 AND block.height<=${txHeight}`, per_page: 2 });
    assert(answer.totalCount === txHeight && answer.blocks.length === txHeight, "every block");
  });
  await check("commit", async () => {
    const answer = await client.commit(txHeight);
    assert(answer.commit.signatures.length === 1 && answer.commit.signatures[0].blockIdFlag === 2, "one signature");
    assert(answer.commit.signatures[0].signature.length === 64, "a 64-byte signature");
  });
  await check("abciQuery store with proof", async () => {
    const answer = await client.abciQuery({ path: "/store", data: new Uint8Array(), prove: true });
    return `code ${answer.code}`;
  });
  await check("abciQuery clearing account", async () => {
    const answer = await client.abciQuery({ path: `/clearing/account/${inputs.sender}`, data: new Uint8Array() });
    assert(answer.code === 0 && answer.value.length > 0, `code ${answer.code}: ${answer.log}`);
    JSON.parse(Buffer.from(answer.value).toString("utf8"));
  });

  // Subscriptions: a NewBlock, a NewBlockHeader and a Tx event each, caused by the late tx.
  await check("subscribeNewBlock, subscribeNewBlockHeader, subscribeTx", async () => {
    ws = await rpc.Comet38Client.connect(url.replace(/^http/, "ws"));
    const blocks = firstEvent(ws.subscribeNewBlock(), 20000, "NewBlock");
    const headers = firstEvent(ws.subscribeNewBlockHeader(), 20000, "NewBlockHeader");
    const txs = firstEvent(ws.subscribeTx(`message.sender='${inputs.sender}'`), 20000, "Tx");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const sent = await client.broadcastTxSync({ tx: fromBase64(inputs.txs.late) });
    assert(sent.code === 0, `late tx code ${sent.code}`);
    const [block, header, tx] = await Promise.all([blocks, headers, txs]);
    assert(block.header.height >= 1 && header.height >= 1, "heights");
    assert(toHex(tx.hash) === toHex(sent.hash) && tx.result.code === 0, "the late tx");
  });

  // Methods cosmjs's Comet38Client does not wrap: shapes checked on the raw answers.
  await check("header (raw)", async () => {
    const answer = await raw("header", { height: String(txHeight) });
    assert(answer.header.height === String(txHeight) && answer.header.version.block === "11", "a header");
  });
  await check("header_by_hash (raw)", async () => {
    const block = await client.block(txHeight);
    const answer = await raw("header_by_hash", { hash: toHex(block.blockId.hash) });
    assert(answer.header.height === String(txHeight), "the same header");
  });
  await check("consensus_params (raw)", async () => {
    const answer = await raw("consensus_params", {});
    assert(typeof answer.consensus_params.block.max_bytes === "string", "block params");
  });
  await check("consensus_state (raw)", async () => {
    const answer = await raw("consensus_state", {});
    assert(/^\d+\/\d+\/\d+$/.test(answer.round_state["height/round/step"]), "height/round/step");
  });

  if (ws) ws.disconnect();
  client.disconnect();
}

main()
  .catch((error) => calls.push({ call: "(script)", ok: false, detail: String(error && error.stack || error) }))
  .finally(() => {
    process.stdout.write(JSON.stringify({ calls }) + "\n");
    process.exit(0);
  });

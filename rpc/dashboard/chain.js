// Every read of a CometBFT-standard answer (status, block, validators, num_unconfirmed_txs, the
// NewBlock and Tx events) is here, so a change of those shapes is adapted in this one file. The clearing methods (markets,
// insurance_fund, accounts_at_risk, account, ...) are clearchain's own and are read in place.
//
// Shapes accepted: clearchain's (header.time in nanoseconds as a decimal string, commit
// signatures as [flag, address, timestamp, signature]) and CometBFT v0.38's (header.time as
// RFC 3339, signatures as {block_id_flag, validator_address, ...}).

const COMMIT_FLAG = 2; // BlockIDFlagCommit: the validator precommitted this block

// --- status ---------------------------------------------------------------------------------
export const statusChainId = (status) => String(status.node_info.network);
export const statusHeight = (status) => Number(status.sync_info.latest_block_height);
export const statusCatchingUp = (status) => Boolean(status.sync_info.catching_up);

// --- validators -----------------------------------------------------------------------------
/** [{address, power}] of a `validators` answer. */
export function validatorList(answer) {
  return (answer.validators || []).map((v) => ({
    address: String(v.address).toUpperCase(),
    power: BigInt(v.voting_power),
  }));
}

// --- mempool --------------------------------------------------------------------------------
/** {txs, bytes} of a `num_unconfirmed_txs` answer. */
export const mempoolSize = (answer) => ({ txs: Number(answer.n_txs), bytes: BigInt(answer.total_bytes) });

// --- txs: the Tx event ------------------------------------------------------------------------
/** {hash, height, code, log} of a Tx subscription event (`result.data`, `result.events`):
 * CometBFT's TxResult carries no hash; the event's `tx.hash` key does. */
export function txOfEvent(data, events) {
  const record = data.value.TxResultView || data.value.TxResult || {};
  const result = record.tx_result || record.result || {};
  const hash = record.hash || ((events || {})["tx.hash"] || [""])[0];
  return { hash: String(hash).toUpperCase(), height: String(record.height), code: String(result.code ?? "0"), log: String(result.log || "") };
}

// --- blocks and the NewBlock event ------------------------------------------------------------
/** The block of a `block` answer. */
export const blockOfAnswer = (answer) => answer.block;
/** The block carried by a NewBlock subscription event (`result.data`). */
export const newBlockOf = (data) => data.value.block;
export const blockHeight = (block) => Number(block.header.height);
export const blockTxCount = (block) => ((block.data && block.data.txs) || []).length;

/** Milliseconds since the epoch of a block header's time. */
export function blockTimeMs(block) {
  const time = String(block.header.time);
  if (/^[0-9]+$/.test(time)) return Number(BigInt(time) / 1000000n);
  return Date.parse(time);
}

/** Upper-case hex addresses of the validators whose precommit is in the block's last commit. */
export function lastCommitSigners(block) {
  const signers = new Set();
  const commit = block.last_commit;
  if (!commit || !Array.isArray(commit.signatures)) return signers;
  for (const sig of commit.signatures) {
    const flag = Array.isArray(sig) ? sig[0] : sig.block_id_flag;
    const address = Array.isArray(sig) ? sig[1] : sig.validator_address;
    if (Number(flag) === COMMIT_FLAG && address) signers.add(String(address).toUpperCase());
  }
  return signers;
}

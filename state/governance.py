"""Parameter, market and validator changes approved by more than 2/3 of validator power.

A proposal is a canonical map; its hash identifies it. Validators vote with ``vote`` txs; at the
end of each block every proposal whose voters (still active) hold more than 2/3 of the power is
applied in hash order, and proposals older than the replay window are dropped.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from primitives.crypto import address_of
from state.codes import Code, TxRejected
from state import oracle
from state.env import BlockEnv
from state.genesis import RISK_FIELDS, GenesisError, parse_market, parse_risk
from state.events import event
from state.model import BREAKER_HALTED, Market, proposal_key


FIELDS = {
    "set_risk": {"kind", "title", "params"},
    "set_market": {"kind", "title", "market"},
    "set_validator": {"kind", "title", "pub_key", "power", "name"},
    "set_min_fee": {"kind", "title", "min_tx_fee"},
    "resume_market": {"kind", "title", "market"},
}
FIXED_MARKET_FIELDS = ("base_asset", "size_exponent", "price_exponent")


def _invalid(message: str) -> TxRejected:
    return TxRejected(Code.INVALID_PROPOSAL, message)


def validate(env: BlockEnv, proposal: dict[str, Any]) -> None:
    kind = proposal["kind"]
    if set(proposal) != FIELDS[kind]:
        raise _invalid(f"a {kind} proposal has exactly the fields {', '.join(sorted(FIELDS[kind]))}")
    if not isinstance(proposal["title"], str) or len(proposal["title"]) > 200:
        raise _invalid("title must be a string of at most 200 characters")
    g = env.ledger.g
    try:
        if kind == "set_risk":
            params = proposal["params"]
            if not isinstance(params, dict) or not params or not set(params) <= RISK_FIELDS:
                raise _invalid(f"params must change some of {', '.join(sorted(RISK_FIELDS))}")
            parse_risk({**asdict(g.risk), **params}, "params")
        elif kind == "set_market":
            market = parse_market(proposal["market"], "market", env.ledger.quote_decimals)
            existing = env.ledger.w_markets.get(market.id)
            if existing is not None:
                for name in FIXED_MARKET_FIELDS:
                    if getattr(existing.params, name) != getattr(market, name):
                        raise _invalid(f"market.{name} of an existing market cannot change")
        elif kind == "set_validator":
            pub, power = proposal["pub_key"], proposal["power"]
            if type(pub) is not bytes or len(pub) != 32:
                raise _invalid("pub_key must be 32 bytes")
            if type(power) is not int or not 0 <= power <= 2**50:
                raise _invalid("power must be an integer in [0, 2**50]")
            if not isinstance(proposal["name"], str) or len(proposal["name"]) > 64:
                raise _invalid("name must be a string of at most 64 characters")
            address = address_of(pub)
            others = sum(p for a, p in g.validator_power().items() if a != address)
            if others + power == 0:
                raise _invalid("the validator set cannot become empty")
        elif kind == "resume_market":
            market = env.ledger.w_markets.get(proposal["market"]) if isinstance(proposal["market"], str) else None
            if market is None:
                raise _invalid("market must name an existing market")
            if market.breaker != BREAKER_HALTED:
                raise _invalid(f"market {proposal['market']} is not halted by its breaker")
        elif kind == "set_min_fee":
            fee = proposal["min_tx_fee"]
            if type(fee) is not int or not 0 <= fee <= 10**12:
                raise _invalid("min_tx_fee must be an integer in [0, 10**12]")
    except GenesisError as exc:
        raise _invalid(str(exc)) from exc


def record_vote(env: BlockEnv, proposal_hash: bytes, proposal: dict[str, Any], voter: bytes) -> list:
    entry = env.proposals.get(proposal_hash)
    if entry is None:
        entry = {"proposal": proposal, "votes": [], "height": env.height}
    if voter in entry["votes"]:
        raise TxRejected(Code.ALREADY_VOTED, "this validator already voted for the proposal")
    entry = {**entry, "votes": sorted(entry["votes"] + [voter])}
    env.proposals[proposal_hash] = entry
    env.ledger.put_raw(proposal_key(proposal_hash), entry)
    return [event("vote", proposal=proposal_hash, voter=voter, kind=proposal["kind"])]


def end_block(env: BlockEnv) -> list[dict[str, Any]]:
    """Apply passed proposals, drop expired ones; returns their events."""
    events: list[dict[str, Any]] = []
    g = env.ledger.g
    for proposal_hash in sorted(env.proposals):
        entry = env.proposals[proposal_hash]
        power = g.validator_power()
        approving = sum(power.get(v, 0) for v in entry["votes"])
        if 3 * approving > 2 * sum(power.values()):
            try:
                validate(env, entry["proposal"])
            except TxRejected as exc:
                events.append(event("proposal_failed", proposal=proposal_hash, reason=exc.message))
            else:
                _apply(env, entry["proposal"])
                events.append(event("proposal_applied", proposal=proposal_hash, kind=entry["proposal"]["kind"]))
        elif env.height - entry["height"] < g.replay_window:
            continue
        del env.proposals[proposal_hash]
        env.ledger.delete_raw(proposal_key(proposal_hash))
    return events


def _apply(env: BlockEnv, proposal: dict[str, Any]) -> None:
    ledger = env.ledger
    g = ledger.g
    kind = proposal["kind"]
    if kind == "set_risk":
        g.risk = parse_risk({**asdict(g.risk), **proposal["params"]}, "params")
    elif kind == "set_min_fee":
        g.min_tx_fee = proposal["min_tx_fee"]
    elif kind == "resume_market":
        oracle.resume(ledger.w_markets[proposal["market"]])
        env.markets_changed = True
    elif kind == "set_market":
        params = parse_market(proposal["market"], "market", ledger.quote_decimals)
        existing = ledger.w_markets.get(params.id)
        if existing is None:
            market = Market(params, params.initial_price, env.time_ms, env.time_ms + params.funding_interval_ms)
            ledger.w_markets[params.id] = market
            ledger.holders.setdefault(params.id, set())
        else:
            existing.params = params
        env.markets_changed = True
    elif kind == "set_validator":
        address = address_of(proposal["pub_key"])
        if proposal["power"] == 0:
            removed = g.validators.pop(address, None)
            if removed is None or removed[3]:
                # Unknown, or jailed (already out of the consensus set): an update removing it
                # would be refused by every node's validator set and halt the chain.
                return
        else:
            g.validators[address] = [proposal["pub_key"], proposal["power"], proposal["name"], False]
        env.validator_updates[proposal["pub_key"]] = proposal["power"]

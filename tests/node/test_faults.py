"""``[fault_injection]`` (node/faults.py): off unless set, loud when set, and each fault does
what the fault tests rely on."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from consensus.commit import verify_duplicate_vote
from consensus.types import BlockID, DuplicateVoteEvidence, Vote, VoteType
from consensus.validators import Validator, ValidatorSet
from node import clock, faults
from node.config import Config, ConfigError, FaultInjectionSection, from_dict, load_config, replace, save_config, to_dict
from primitives.crypto import PrivateKey, verify


@pytest.fixture(autouse=True)
def _clock_back() -> None:
    yield
    clock.set_offset_ms(0)


class _Blocks:
    def __init__(self) -> None:
        self.writes = 0

    def write_block(self, pending: object, app_hash: bytes) -> bytes:
        self.writes += 1
        return app_hash


def test_the_section_is_absent_from_config_toml_unless_a_fault_is_set(tmp_path: Path) -> None:
    assert "fault_injection" not in to_dict(Config())
    path = tmp_path / "config.toml"
    save_config(replace(Config(), fault_injection={"clock_offset_ms": -2500}), path)
    assert "[fault_injection]" in path.read_text()
    assert load_config(path).fault_injection.clock_offset_ms == -2500
    with pytest.raises(ConfigError, match="fault_injection.fsync_delay_ms"):
        from_dict({"fault_injection": {"fsync_delay_ms": -1}})
    with pytest.raises(ConfigError, match="unknown setting fault_injection.double_sign"):
        from_dict({"fault_injection": {"double_sign": True}})  # only the loud name switches it on


def test_nothing_is_installed_by_default_and_everything_set_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    blocks = _Blocks()
    key = PrivateKey.generate()
    assert faults.install(FaultInjectionSection(), blocks=blocks, validator_key=key, chain_id="c") is None  # type: ignore[arg-type]
    assert clock.now_ms() == pytest.approx(time.time() * 1000, abs=1000)
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        equivocator = faults.install(FaultInjectionSection(clock_offset_ms=60_000, fsync_delay_ms=50,
                                                           byzantine_double_sign_UNSAFE=True),
                                     blocks=blocks, validator_key=key, chain_id="c")  # type: ignore[arg-type]
    text = caplog.text
    assert "FAULT INJECTION ACTIVE" in text and "clock_offset_ms=60000" in text and "BYZANTINE" in text
    assert equivocator is not None
    assert clock.now_ms() - time.time() * 1000 == pytest.approx(60_000, abs=1000)
    started = time.monotonic()
    assert blocks.write_block(object(), b"h") == b"h" and blocks.writes == 1
    assert time.monotonic() - started >= 0.05


@pytest.mark.parametrize("block_id", [None, BlockID(b"\x07" * 32)])
def test_the_equivocators_twin_vote_is_valid_evidence_against_it(block_id: BlockID | None) -> None:
    key = PrivateKey.generate()
    validators = ValidatorSet.from_genesis([Validator.from_public_key(key.public_key, 10)])
    honest = Vote(VoteType.PREVOTE, 5, 1, block_id, 1000, key.address, 0)
    honest = Vote(VoteType.PREVOTE, 5, 1, block_id, 1000, key.address, 0,
                  key.sign(honest.sign_bytes("chain-x")))
    twin = faults.Equivocator(key, "chain-x").conflicting_vote(honest)
    assert (twin.height, twin.round, twin.type) == (5, 1, VoteType.PREVOTE)
    assert twin.block_id != honest.block_id
    assert verify(key.public_key, twin.sign_bytes("chain-x"), twin.signature)
    verify_duplicate_vote("chain-x", validators, DuplicateVoteEvidence.of(honest, twin))  # raises if not

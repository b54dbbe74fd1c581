"""``clearchain genesis validate``: the shipped file loads; a bad field is named."""

import json

from click.testing import CliRunner

from cli.main import main
from cli.genesis import REPO_GENESIS


def validate(path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["genesis", "validate", str(path)])
    return result.exit_code, result.output


def test_shipped_genesis_is_valid() -> None:
    code, output = validate(REPO_GENESIS)
    assert code == 0, output
    assert "BTC-PERP" in output and "ETH-PERP" in output and "SOL-PERP" in output


def test_bad_field_is_named(tmp_path) -> None:
    document = json.loads(REPO_GENESIS.read_text())
    market = document["app_state"]["markets"][1]
    market["maintenance_margin_ppm"] = market["initial_margin_ppm"]
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(document))
    code, output = validate(path)
    assert code != 0
    assert "markets[1].maintenance_margin_ppm" in output


def test_wrong_type_and_missing_field_are_named(tmp_path) -> None:
    document = json.loads(REPO_GENESIS.read_text())
    document["consensus_params"]["timeouts"]["propose_ms"] = "fast"
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(document))
    code, output = validate(path)
    assert code != 0 and "consensus_params.timeouts.propose_ms" in output
    del document["chain_id"]
    path.write_text(json.dumps(document))
    code, output = validate(path)
    assert code != 0 and "chain_id" in output


def test_unreadable_genesis_fails_clearly(tmp_path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text("{")
    code, output = validate(path)
    assert code != 0 and "not valid JSON" in output
    code, output = validate(tmp_path / "missing.json")
    assert code != 0 and "does not exist" in output

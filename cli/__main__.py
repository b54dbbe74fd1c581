"""``python -m cli ...`` is ``clearchain ...`` (the testnet starts its nodes this way)."""

from cli.main import main

main()

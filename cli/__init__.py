"""The ``clearchain`` command line: every command, over the node, the RPC client and localnet."""

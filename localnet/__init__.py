"""Local networks: the multi-process testnet, its demo load, the dev node, synthetic chains."""

"""Independent reference model of the clearing rules (state/README.md) and its differential fuzz."""

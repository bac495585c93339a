"""Load benchmark for the gateway: ``python -m bench --help`` (see bench/README.md)."""

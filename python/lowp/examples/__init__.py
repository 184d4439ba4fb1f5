"""Examples built on lowp (run with python -m lowp.examples.<name>)."""

"""verifier: supply-chain verification for model weights."""

__version__ = "0.1.0"

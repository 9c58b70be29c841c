"""Organisation policy: schema and the pure decision engine."""

from verifier.policy.engine import decide
from verifier.policy.schema import Policy, default_policy_path, load_policy

__all__ = ["Policy", "decide", "default_policy_path", "load_policy"]

"""Organisation policy: schema, publisher registry, evidence document and the pure decision."""

from verifier.policy.compiled import Policy
from verifier.policy.engine import decide
from verifier.policy.evidence import build_evidence
from verifier.policy.loading import default_policy_path, load_policy

__all__ = ["Policy", "build_evidence", "decide", "default_policy_path", "load_policy"]

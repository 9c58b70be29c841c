"""The organisation's verification service: HTTP API, tokens and roles, scan jobs, admission.

Nothing here loads FastAPI or uvicorn at import time; `verifier.service.app` does, and only
`verifier serve` (and the tests) import it.
"""

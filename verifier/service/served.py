"""`verifier serve --workers N`: each uvicorn worker process builds its own service and app
from the configuration the parent checked, handed over in the environment."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.service.core import ServiceConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

#: The environment variable that carries the configuration to the worker processes.
CONFIG_ENV = "VERIFIER_SERVE_CONFIG"
_PATHS = {"policy_path", "publishers_path", "approval_key_path"}
_TUPLES = {"waivers_paths", "notify_urls"}


def config_text(config: ServiceConfig) -> str:
    """`config` as the JSON text `app_from_environment` reads."""
    return json.dumps(asdict(config), default=str)


def read_config(text: str) -> ServiceConfig:
    """The configuration `config_text` wrote."""
    given: dict[str, Any] = json.loads(text)
    values: dict[str, Any] = {}
    for field in fields(ServiceConfig):
        value = given[field.name]
        if field.name in _PATHS and value is not None:
            value = Path(value)
        elif field.name == "waivers_paths":
            value = tuple(Path(item) for item in value)
        elif field.name in _TUPLES:
            value = tuple(value)
        values[field.name] = value
    return ServiceConfig(**values)


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory), its service started by its lifespan.

    Raises:
        KeyError: The parent set no configuration (not started by `verifier serve`).
        StoreError: The database cannot be reached.
        PolicyError: The policy, registry or waivers are missing or invalid.
    """
    from verifier.service.app import create_app
    from verifier.service.core import Service

    config = read_config(os.environ[CONFIG_ENV])
    return create_app(Service(config), max_body_bytes=config.max_body_bytes, freeze_gc=True)

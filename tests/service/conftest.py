"""A running service on a fresh database, with one token per role, driven through TestClient
(`api`) or served by uvicorn on loopback (`server`, for the command line's client)."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_ENV
from tests.hub_emulator import HubEmulator
from verifier.policy import default_policy_path
from verifier.service.app import create_app
from verifier.service.core import Service, ServiceConfig
from verifier.service.model import Role
from verifier.service.tokens import new_token, token_digest


def add_token(service: Service, name: str, role: Role) -> str:
    """A new token's secret, recorded as the CLI records it."""
    secret = new_token()
    service.records.create_token(
        name=name, role=role, token_sha256=token_digest(secret), actor="test"
    )
    return secret


@dataclass
class Api:
    """The client, the service behind it, and a secret per role."""

    client: TestClient
    service: Service
    tokens: dict[Role, str]

    def call(
        self, method: str, path: str, *, role: Role | None = Role.ADMIN, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return self.client.request(method, path, headers=headers, **kwargs)

    def scan(self, target: str, **body: Any) -> dict[str, Any]:
        """Submit a scan as the scanner, wait for the job, return its document."""
        response = self.call(
            "POST", "/api/v1/scans", role=Role.SCANNER, json={"target": target, **body}
        )
        assert response.status_code in (200, 202), response.text
        self.service.runner.drain()
        job = self.call("GET", f"/api/v1/scans/{response.json()['id']}", role=Role.VIEWER)
        assert job.status_code == 200, job.text
        document: dict[str, Any] = job.json()
        return document


def start(database_url: str, **config: Any) -> tuple[Service, dict[Role, str]]:
    service = Service(
        ServiceConfig(database_url=database_url, policy_path=default_policy_path(), **config)
    )
    tokens = {role: add_token(service, f"{role.value}-token", role) for role in Role}
    return service, tokens


@pytest.fixture
def api(database_url: str, hub: HubEmulator) -> Iterator[Api]:
    """The service (on SQLite, and PostgreSQL when set) with the Hub emulator as its Hub."""
    service, tokens = start(database_url)
    with TestClient(create_app(service)) as client:
        yield Api(client, service, tokens)


@pytest.fixture
def postgresql_database() -> Iterator[str]:
    """A fresh PostgreSQL database of its own (workers in other processes share it), dropped
    after the test."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: the workers need PostgreSQL")
    name = f"verifier_w_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Running:
    """The served address, the service behind it, and a secret per role."""

    url: str
    service: Service
    tokens: dict[Role, str]


@pytest.fixture
def server(database_url: str, hub: HubEmulator) -> Iterator[Running]:
    """`verifier serve`'s app under uvicorn on a loopback port, jobs run by its threads (on
    PostgreSQL, by a worker in this process that runs whatever is queued)."""
    service, tokens = start(database_url)
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            service.runner.drain()
            stop.wait(0.1)

    worker = None if service.embedded else threading.Thread(target=work, daemon=True)
    if worker is not None:
        worker.start()
    port = free_port()
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="error")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    for _ in range(500):
        if runner.started:
            break
        thread.join(0.02)
    assert runner.started, "the test server did not start"
    try:
        yield Running(f"http://127.0.0.1:{port}", service, tokens)
    finally:
        runner.should_exit = True
        thread.join(30)
        stop.set()
        if worker is not None:
            worker.join(30)

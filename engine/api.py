"""The HTTP API: health, readiness, the live census as JSON, and FHIR R4 at /fhir."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse

from engine.fhir.api import mount_fhir
from pipelines.census import census_snapshot

if TYPE_CHECKING:
    from engine.runtime import Engine


def _census_document(engine: Engine) -> dict[str, Any]:
    wards = census_snapshot(engine.census_state())
    return {
        "occupied": sum(len(beds) for beds in wards.values()),
        "wards": [
            {"ward": ward, "occupied": len(beds), "beds": sorted(beds)}
            for ward, beds in sorted(wards.items())
        ],
    }


def create_app(engine: Engine, token: str | None = None) -> FastAPI:
    """The API of a running engine. With ``token`` set, /api and /fhir (but
    /fhir/metadata) require ``Bearer <token>``."""
    app = FastAPI(title="Wardstream", version="0.1.0", docs_url="/docs", redoc_url=None)
    mount_fhir(
        app,
        store=engine.fhir_store,
        ingest=engine.fhir_ingest,
        token=token,
        software_version=app.version,
        # The capabilities are fixed when the engine starts: that is their date.
        clock=lambda: engine.started_at or datetime.now(UTC),
    )

    def require_token(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        if engine.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "starting"}, status_code=503)

    @app.get("/api/census", dependencies=[Depends(require_token)])
    def census() -> dict[str, Any]:
        return _census_document(engine)

    @app.get("/api/census/{ward}", dependencies=[Depends(require_token)])
    def ward_census(ward: str) -> dict[str, Any]:
        for entry in _census_document(engine)["wards"]:
            if entry["ward"] == ward:
                return dict(entry)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no occupied beds known for ward {ward!r}")

    @app.get("/api/stats", dependencies=[Depends(require_token)])
    def stats() -> dict[str, Any]:
        return engine.stats()

    return app


class ApiServer(uvicorn.Server):
    """uvicorn in the engine's own event loop; the engine owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

"""RFC 9457 problem details: every error the API returns is one of these documents."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


class ProblemPublic(BaseModel):
    """An error, as RFC 9457 describes it; extension members may follow."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class ProblemError(Exception):
    """Raised by routes and dependencies; becomes a problem document."""

    def __init__(self, status: int, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extensions = extensions


def problem_response(
    status: int, detail: str, headers: dict[str, str] | None = None, **extensions: Any
) -> JSONResponse:
    """A problem document with the status's own phrase as its title."""
    body = ProblemPublic(
        title=HTTPStatus(status).phrase, status=status, detail=detail, **extensions
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, media_type=MEDIA_TYPE, headers=headers
    )


def _field(loc: tuple[int | str, ...] | list[int | str]) -> str:
    return ".".join(str(part) for part in loc)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem_response(exc.status, exc.detail, headers, **exc.extensions)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"no route {request.method} {request.url.path}; /docs lists the routes"
    else:
        detail = str(exc.detail)
    return problem_response(exc.status_code, detail, dict(exc.headers or {}) or None)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(err["loc"]), "message": err["msg"]} for err in exc.errors()]
    detail = "; ".join(f"{err['field']}: {err['message']}" for err in errors)
    return problem_response(422, detail or "the request is not valid", errors=errors)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "the server failed; the error is in its log")


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error, ours or the framework's, a problem document."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(Exception, _on_unexpected)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem documents a route may return."""
    return {
        status: {
            "model": ProblemPublic,
            "content": {MEDIA_TYPE: {}},
            "description": HTTPStatus(status).phrase,
        }
        for status in statuses
    }

"""The read-only overview page at ``/`` and its static files.

The page holds no data: its script reads a token from the URL fragment (``#token=…``)
and calls the API's own routes with it, so serving the page needs no token. The files
are fixed, listed here by name, and sent with a strict Content-Security-Policy: scripts
and styles from this origin only, nothing inline.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, Response

from api.problems import ProblemError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PAGE = "index.html"
# Only these files are served: the name is looked up, never joined into a path unchecked.
ASSETS = {
    "overview.js": "text/javascript; charset=utf-8",
    "overview.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate: a new release's script is picked up at once
}

router = APIRouter(include_in_schema=False)


@cache
def _content(name: str) -> bytes:
    # Read once: a few small files that ship with the package, like its code.
    return (STATIC_DIR / name).read_bytes()


@router.get("/")
async def overview_page() -> Response:
    """The overview page; public, since it holds no data until a token is given."""
    return Response(_content(PAGE), media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    """One of the page's script, style sheet and icon."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ProblemError(404, f"no static file {name!r}; the page uses {', '.join(ASSETS)}")
    return Response(_content(name), media_type=media_type, headers=HEADERS)

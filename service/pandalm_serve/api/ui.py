"""The playground page: one self-contained HTML file (no build step, no external assets), at `GET /`."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["page"])

# Nothing but this server: the page loads no outside asset, and evaluation data goes nowhere else.
_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


@cache
def _page() -> str:
    return (resources.files("pandalm_serve") / "ui" / "index.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse, summary="The playground page", include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse(_page(), headers={"Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff"})

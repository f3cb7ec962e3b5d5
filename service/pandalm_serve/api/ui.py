"""The playground page: one self-contained HTML file (no build step, no external assets), at `GET /`."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["page"])

# Nothing but this server: the page loads no outside asset, and evaluation data goes nowhere else. Its one
# script runs by its hash, not 'unsafe-inline': text injected into the page could not run as a script.
_POLICY = (
    "default-src 'none'; script-src '{script}'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@cache
def _page() -> tuple[str, str]:
    """The page, and its Content-Security-Policy naming the hash of its one script."""
    html = (resources.files("pandalm_serve") / "ui" / "index.html").read_text(encoding="utf-8")
    scripts = _SCRIPT.findall(html)
    assert len(scripts) == 1, "the page has one inline script, allowed by its hash"
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    return html, _POLICY.format(script=f"sha256-{digest}")


@router.get("/", response_class=HTMLResponse, summary="The playground page", include_in_schema=False)
async def page() -> HTMLResponse:
    html, policy = _page()
    return HTMLResponse(html, headers={"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff"})

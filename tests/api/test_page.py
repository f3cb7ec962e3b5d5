"""The playground page is served whole, from this server only, and can be turned off."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi.testclient import TestClient

from tests.api.conftest import MakeClient


def test_the_page_is_self_contained(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "connect-src 'self'" in policy
    html = response.text
    # The one script runs by its hash; nothing inline else would.
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in policy and "unsafe" not in policy.split("script-src")[1].split(";")[0]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page loads something from elsewhere"
    # Every form field has a label.
    fields = set(re.findall(r'<(?:textarea|input|select)[^>]*id="([^"]+)"', html))
    labelled = set(re.findall(r'<label[^>]*for="([^"]+)"', html)) | {"swap"}  # swap's label wraps it
    assert fields <= labelled, fields - labelled


def test_the_page_can_be_turned_off(make_client: MakeClient) -> None:
    assert make_client(ui=False).get("/").status_code == 404

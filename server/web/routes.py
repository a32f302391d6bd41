"""Pages and the static bundle. The HTML shell carries no user data (the page fetches it
through the API), and a strict Content-Security-Policy: scripts only from this server.
Kernel HTML runs in /frame, inside a sandboxed iframe with an opaque origin; charts run in
/frame/chart, sandboxed the same way under a policy that admits only our renderers."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.auth.credentials import authenticate
from server.deps import AppServices, DbSession, facts_of
from server.errors import NotAuthenticated, NotFound

router = APIRouter(include_in_schema=False)

# The committed bundle beside the package in a checkout (`pip install -e .`); an installed
# copy (the Docker image) says where it put it.
STATIC_DIR = Path(
    os.environ.get("TANDEM_STATIC_DIR")
    or Path(__file__).resolve().parent.parent.parent / "static" / "dist"
)

PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # CodeMirror and KaTeX set style attributes
        # Markdown may show pictures from the web (badges, figures), as Jupyter and Colab
        # do; pages send no Referer (Referrer-Policy: no-referrer), and scripts stay ours.
        "img-src 'self' data: blob: https:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The output frame is sandboxed without allow-same-origin: whatever runs there cannot
# reach the page, its cookies or its storage; it may load what the output asks for.
FRAME_POLICY = "default-src * data: blob: 'unsafe-inline' 'unsafe-eval'; frame-ancestors 'self'"
# Charts (Plotly, Vega, GeoJSON) are data, not code: their frame runs this server's
# renderers and nothing else. No inline script and no eval, so HTML or an expression
# smuggled into a spec cannot run even in the sandbox; no network, so it cannot call out.
CHART_FRAME_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'unsafe-inline'",  # Plotly and vega-embed add style elements
        "img-src data: blob:",
        "font-src data:",
        "frame-ancestors 'self'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
_CHART_FRAME = (
    '<!doctype html><meta charset="utf-8"><style>body{margin:0;font:13px/1.4 system-ui,'
    "sans-serif}.failed{color:#b42318;padding:4px 8px}</style>"
    '<body><div id="output"></div><script src="/static/chart-frame.js"></script>'
)

_SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tandem</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body data-page="{page}"{extra}>
<div id="app"></div>
<script type="module" src="/static/app.js"></script>
</body>
</html>
"""


def _page(page: str, **data: str) -> HTMLResponse:
    extra = "".join(f' data-{key}="{html.escape(value)}"' for key, value in data.items())
    return HTMLResponse(
        _SHELL.format(page=page, extra=extra),
        headers={"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff"},
    )


@router.get("/")
def notebooks_page() -> HTMLResponse:
    return _page("list")


@router.get("/login")
def login_page() -> HTMLResponse:
    return _page("login")


@router.get("/n/{notebook_id}")
def editor_page(notebook_id: str) -> HTMLResponse:
    if not re.fullmatch(r"[0-9a-f]{1,32}", notebook_id):
        raise NotFound("no such notebook")
    return _page("editor", notebook=notebook_id)


@router.get("/links/{token}")
def link_page(token: str) -> HTMLResponse:
    """Opening a share link: the page redeems the token (it stays out of any Referer)."""
    return _page("link", token=token[:200])


# Two overlapping sheets, as the editor draws them; no file needed, no 404 in every log.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect x="3" y="3" width="18" height="22" rx="3" fill="#1f6feb"/>'
    '<rect x="11" y="7" width="18" height="22" rx="3" fill="#f78166" fill-opacity=".9"/>'
    "</svg>"
)


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(
        FAVICON,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/frame")
def output_frame() -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><meta charset="utf-8"><body><script src="/static/frame.js"></script>',
        headers={"Content-Security-Policy": FRAME_POLICY},
    )


@router.get("/admin", response_model=None)
def admin_page(request: Request, db: DbSession, services: AppServices) -> Response:
    """Accounts and invites, for admins only: checked here too, not only by its API."""
    try:
        user = authenticate(db, facts_of(request), services.settings.allowed_origins)
    except NotAuthenticated:
        return RedirectResponse("/login?next=/admin", status_code=303)
    if not user.is_admin:
        page = _page("forbidden")
        page.status_code = 403
        return page
    return _page("admin")


@router.get("/account")
def account_page() -> HTMLResponse:
    """Change one's own password (the page asks the API who is signed in)."""
    return _page("account")


@router.get("/invite/{token}")
def invite_page(token: str) -> HTMLResponse:
    """Spending an invite: the page sends the token in a POST body (never in a Referer)."""
    return _page("invite", token=token[:200])


@router.get("/frame/chart")
def chart_frame() -> HTMLResponse:
    return HTMLResponse(_CHART_FRAME, headers={"Content-Security-Policy": CHART_FRAME_POLICY})

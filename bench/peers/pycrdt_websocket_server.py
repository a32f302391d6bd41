"""pycrdt-websocket's own ASGI server (the engine under JupyterLab's collaboration), served by
uvicorn: the peer the sync benchmark compares Tandem with. No auth, no persistence."""

from __future__ import annotations

import sys

import anyio
import uvicorn
from pycrdt.websocket import ASGIServer, WebsocketServer


async def main(port: int) -> None:
    websocket_server = WebsocketServer()
    app = ASGIServer(websocket_server)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"
    )
    async with websocket_server:
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]))

"""The baseline for ``bench.intake``: aiohttp that only decodes the JSON body.

``python -m bench.bare_server PORT`` listens on 127.0.0.1:PORT. Whatever the router
costs above this server is the router's own work (auth, validation, SQLite commit,
metrics), since both run the same aiohttp stack in one process.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web


async def webhook(request: web.Request) -> web.Response:
    document = json.loads(await request.read())
    return web.json_response({"status": "accepted", "alerts": len(document.get("alerts", []))})


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def main() -> None:
    port = int(sys.argv[1])
    app = web.Application()
    app.router.add_post("/webhooks/alertmanager", webhook)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()

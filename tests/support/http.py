"""An HTTP client that runs the app on the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from seeonline.server.app import create_app
from seeonline.settings import Settings
from tests.support.keys import API_KEY


@contextlib.asynccontextmanager
async def same_loop_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client running the app on the caller's event loop (litestar's test client runs it on a thread
    of its own and blocks this loop meanwhile, so an in-process sandbox could not answer the app's logins)."""
    app = create_app(settings)
    started, finish = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        # The lifespan's task group must be entered and left by one task; fixtures tear down in another.
        async with app.lifespan():
            started.set()
            await finish.wait()

    lifespan = asyncio.get_running_loop().create_task(serve())
    await asyncio.wait([lifespan, asyncio.ensure_future(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if lifespan.done():
        await lifespan  # start-up failed: raise its error
    try:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar types its ASGI events precisely
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.headers["X-API-Key"] = API_KEY
            yield http
    finally:
        finish.set()
        await lifespan

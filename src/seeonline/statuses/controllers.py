"""HTTP routes for /online-statuses."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from seeonline.api.handler_types import AnyRequest, Pool, Streams
from seeonline.api.listing import fetch_one, json_response, list_response, path_id
from seeonline.api.openapi import DeletedCount, list_operation, returns
from seeonline.api.params import parse_text
from seeonline.statuses.resources import ONLINE_STATUSES
from seeonline.statuses.schemas import OnlineStatusCreate, OnlineStatusOut, OnlineStatusUpdate
from seeonline.statuses.service import StatusService
from seeonline.usernames import sql_normalized

Statuses = NamedDependency[StatusService]

BY_USERNAME = (
    "r.tracked_user_id IN (SELECT tu.id FROM tracked_users tu JOIN targets t ON t.id = tu.target_id"
    f" WHERE t.username = {sql_normalized('$1')})"
)


class OnlineStatusController(Controller):
    """CRUD for status transitions, plus bulk deletes per tracked user."""

    path = "/online-statuses"
    tags = ["online-statuses"]

    @get("/", operation_class=list_operation(ONLINE_STATUSES), responses=returns(OnlineStatusOut, many=True))
    async def list_statuses(self, request: AnyRequest, pool: Pool, streams: Streams) -> Response[Any]:
        """List status transitions (streamed when unpaginated)."""
        return await list_response(pool, streams, ONLINE_STATUSES, request)

    @post("/", responses=returns(OnlineStatusOut, status=201))
    async def create_status(self, statuses: Statuses, data: JSONBody[OnlineStatusCreate]) -> Response[bytes]:
        """Record a transition."""
        return json_response(await statuses.create(data), 201)

    @get("/{status_id:str}", responses=returns(OnlineStatusOut))
    async def get_status(self, pool: Pool, status_id: FromPath[str]) -> Response[bytes]:
        """One transition."""
        return json_response(await fetch_one(pool, ONLINE_STATUSES, path_id(status_id)))

    @patch("/{status_id:str}", responses=returns(OnlineStatusOut))
    async def update_status(
        self, statuses: Statuses, status_id: FromPath[str], data: JSONBody[OnlineStatusUpdate]
    ) -> Response[bytes]:
        """Correct a transition."""
        return json_response(await statuses.update(path_id(status_id), data))

    @delete("/{status_id:str}", responses=returns(None))
    async def delete_status(self, statuses: Statuses, status_id: FromPath[str]) -> None:
        """Delete one transition."""
        await statuses.delete_where("r.id = $1", path_id(status_id))

    @delete("/by-tracked-user-id/{tracked_user_id:str}", status_code=200, responses=returns(DeletedCount))
    async def delete_by_tracked_user(self, statuses: Statuses, tracked_user_id: FromPath[str]) -> dict[str, int]:
        """Delete every transition of one tracked user."""
        deleted = await statuses.delete_where("r.tracked_user_id = $1", path_id(tracked_user_id, "tracked_user_id"))
        return {"deleted_count": deleted}

    @delete("/by-tracked-username/{username:str}", status_code=200, responses=returns(DeletedCount))
    async def delete_by_username(self, statuses: Statuses, username: FromPath[str]) -> dict[str, int]:
        """Delete every transition of the tracked users with this username."""
        deleted = await statuses.delete_where(BY_USERNAME, parse_text("username", username))
        return {"deleted_count": deleted}

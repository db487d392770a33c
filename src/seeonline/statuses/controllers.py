"""HTTP routes for /online-statuses."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from seeonline.api.handler_types import AnyRequest, PathId, Pool, Streams
from seeonline.api.listing import fetch_one, json_response, list_response, path_id
from seeonline.api.openapi import DOES_NOT_EXIST, DeletedCount, list_operation, returns
from seeonline.bot_users.schemas import USERNAME, PathUsername
from seeonline.history.controllers import online_statuses_csv, online_statuses_csv_wanted
from seeonline.history.exports import CSV
from seeonline.history.params import EXPORT_FORMAT, TIME_ZONE
from seeonline.statuses.resources import ONLINE_STATUSES
from seeonline.statuses.schemas import OnlineStatusCreate, OnlineStatusOut, OnlineStatusUpdate
from seeonline.statuses.service import StatusService
from seeonline.usernames import sql_normalized

Statuses = NamedDependency[StatusService]
REFERENCE_REFUSED = {400: f"{DOES_NOT_EXIST} (`tracked_user_id`)"}

BY_USERNAME = (
    "r.tracked_user_id IN (SELECT tu.id FROM tracked_users tu JOIN targets t ON t.id = tu.target_id"
    f" WHERE t.username = {sql_normalized('$1')})"
)


class OnlineStatusController(Controller):
    """CRUD for status transitions, plus bulk deletes per tracked user."""

    path = "/online-statuses"
    tags = ["online-statuses"]

    @get(
        "/",
        operation_class=list_operation(
            ONLINE_STATUSES,
            {"format": EXPORT_FORMAT, "tz": TIME_ZONE.documented(description="The CSV's time zone (default UTC)")},
            media_types={200: (CSV,)},
        ),
        responses=returns(OnlineStatusOut, many=True),
    )
    async def list_statuses(self, request: AnyRequest, pool: Pool, streams: Streams) -> Response[Any]:
        """List status transitions (streamed when unpaginated; CSV with ``format=csv`` or ``Accept: text/csv``)."""
        if online_statuses_csv_wanted(request):
            return await online_statuses_csv(request, pool, streams)
        return await list_response(pool, streams, ONLINE_STATUSES, request)

    @post("/", responses=returns(OnlineStatusOut, status=201, refusals=REFERENCE_REFUSED))
    async def create_status(self, statuses: Statuses, data: JSONBody[OnlineStatusCreate]) -> Response[bytes]:
        """Record a transition."""
        return json_response(await statuses.create(data), 201)

    @get("/{status_id:str}", responses=returns(OnlineStatusOut))
    async def get_status(self, pool: Pool, status_id: PathId) -> Response[bytes]:
        """One transition."""
        return json_response(await fetch_one(pool, ONLINE_STATUSES, path_id(status_id)))

    @patch("/{status_id:str}", responses=returns(OnlineStatusOut, refusals=REFERENCE_REFUSED))
    async def update_status(
        self, statuses: Statuses, status_id: PathId, data: JSONBody[OnlineStatusUpdate]
    ) -> Response[bytes]:
        """Correct a transition."""
        return json_response(await statuses.update(path_id(status_id), data))

    @delete("/{status_id:str}", responses=returns(None))
    async def delete_status(self, statuses: Statuses, status_id: PathId) -> None:
        """Delete one transition."""
        await statuses.delete_where("r.id = $1", path_id(status_id))

    @delete("/by-tracked-user-id/{tracked_user_id:str}", status_code=200, responses=returns(DeletedCount))
    async def delete_by_tracked_user(self, statuses: Statuses, tracked_user_id: PathId) -> dict[str, int]:
        """Delete every transition of one tracked user."""
        deleted = await statuses.delete_where("r.tracked_user_id = $1", path_id(tracked_user_id, "tracked_user_id"))
        return {"deleted_count": deleted}

    @delete("/by-tracked-username/{username:str}", status_code=200, responses=returns(DeletedCount))
    async def delete_by_username(self, statuses: Statuses, username: PathUsername) -> dict[str, int]:
        """Delete every transition of the tracked users with this username."""
        deleted = await statuses.delete_where(BY_USERNAME, USERNAME("username", username))
        return {"deleted_count": deleted}

"""A first end-to-end request through the app against the real database."""

from typing import Any

from litestar.testing import AsyncTestClient


async def test_tracker_account_round_trip(client: AsyncTestClient[Any]) -> None:
    created = await client.post(
        "/tracker-accounts/", json={"telegram_id": 1, "api_id": 2, "api_hash": "0123456789abcdef"}
    )
    assert created.status_code == 201
    fetched = await client.get(f"/tracker-accounts/{created.json()['id']}/")
    assert fetched.json()["api_hash"] == "****cdef"


def test_no_dependency_is_named_like_a_body_field() -> None:
    # Litestar answers a body validation error on a key that is also a dependency name with a 500.
    import importlib  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415
    from dataclasses import fields  # noqa: PLC0415

    import msgspec  # noqa: PLC0415

    import seeonline  # noqa: PLC0415
    from seeonline.server.dependencies import Services  # noqa: PLC0415

    body_fields: set[str] = set()
    for module in pkgutil.walk_packages(seeonline.__path__, "seeonline."):
        if module.name.endswith(".schemas"):
            for value in vars(importlib.import_module(module.name)).values():
                if isinstance(value, type) and issubclass(value, msgspec.Struct):
                    body_fields |= set(value.__struct_fields__)
    assert "events" in body_fields  # the webhook body's field: the check sees the bodies
    assert {field.name for field in fields(Services)} & body_fields == set()

"""RPC handlers for the account's own "Last seen & online" privacy rule."""

from __future__ import annotations

from typing import Any

from telethon.tl import functions, types

from seeonline.sandbox.handler_kit import RpcContext, RpcError, handles
from seeonline.sandbox.privacy import Privacy

# The sandbox models one rule per account: everybody, my contacts, or nobody (no exceptions).
_RULES = {
    Privacy.EVERYBODY: lambda: [types.PrivacyValueAllowAll()],
    Privacy.CONTACTS: lambda: [types.PrivacyValueAllowContacts(), types.PrivacyValueDisallowAll()],
    Privacy.NOBODY: lambda: [types.PrivacyValueDisallowAll()],
}
_FROM_INPUT = {
    types.InputPrivacyValueAllowAll: Privacy.EVERYBODY,
    types.InputPrivacyValueAllowContacts: Privacy.CONTACTS,
    types.InputPrivacyValueDisallowAll: Privacy.NOBODY,
}


def _status_key(key: Any) -> None:
    if not isinstance(key, types.InputPrivacyKeyStatusTimestamp):
        raise RpcError("PRIVACY_KEY_INVALID", 400)


def _answer(privacy: Privacy) -> Any:
    return types.account.PrivacyRules(rules=_RULES[privacy](), chats=[], users=[])


@handles(functions.account.GetPrivacyRequest)
def get_privacy(ctx: RpcContext, request: Any) -> Any:
    """Who may see the account's last seen."""
    _status_key(request.key)
    return _answer(ctx.me.user.privacy)


@handles(functions.account.SetPrivacyRequest)
def set_privacy(ctx: RpcContext, request: Any) -> Any:
    """Change who may see the account's last seen; the first rule the sandbox knows decides."""
    _status_key(request.key)
    for rule in request.rules:
        privacy = _FROM_INPUT.get(type(rule))
        if privacy is not None:
            ctx.world.set_privacy(ctx.me.id, privacy)
            return _answer(privacy)
    raise RpcError("PRIVACY_VALUE_INVALID", 400)

"""The tracker's own "Last seen & online" rule: whether it lets the tracker see exact statuses, and the fix.

Telegram's reciprocity: an account that hides its last seen from someone cannot see theirs (the
target's status arrives as ``Recently`` with ``by_me``), unless the account has Premium. The login flow
and the tracker workers run this same check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telethon import TelegramClient
from telethon.tl import functions, types

STATUS_KEY = types.InputPrivacyKeyStatusTimestamp
_DISALLOWING = (
    types.PrivacyValueDisallowAll,
    types.PrivacyValueDisallowContacts,
    types.PrivacyValueDisallowUsers,
    types.PrivacyValueDisallowChatParticipants,
)
HIDDEN_DETAIL = (
    "the tracker hides its own last seen (account.getPrivacy(StatusTimestamp) does not allow everybody), so "
    "Telegram hides its targets' exact status from it: set Settings > Privacy > Last Seen & Online > Everybody "
    "on that account, or POST /tracker-accounts/{id}/privacy-check?fix=true"
)


@dataclass(frozen=True)
class PrivacyReport:
    """The outcome of one check: ``ok`` when the tracker can see exact statuses; ``detail`` says why."""

    ok: bool
    detail: str
    fixed: bool = False


def allows_everybody(rules: list[Any]) -> bool:
    """Whether a rule list shows the last seen to everybody, without exceptions."""
    return any(isinstance(rule, types.PrivacyValueAllowAll) for rule in rules) and not any(
        isinstance(rule, _DISALLOWING) for rule in rules
    )


async def check_last_seen(client: TelegramClient, *, fix: bool = False) -> PrivacyReport:
    """Read the rule (and Premium); with ``fix``, set the rule to everybody when it is not."""
    answer = await client(functions.account.GetPrivacyRequest(key=STATUS_KEY()))
    if allows_everybody(answer.rules):
        return PrivacyReport(ok=True, detail="last seen is shown to everybody")
    if fix:
        answer = await client(
            functions.account.SetPrivacyRequest(key=STATUS_KEY(), rules=[types.InputPrivacyValueAllowAll()])
        )
        if allows_everybody(answer.rules):
            return PrivacyReport(ok=True, detail="last seen was hidden; now shown to everybody", fixed=True)
    me = await client.get_me()
    if getattr(me, "premium", False):
        return PrivacyReport(ok=True, detail="last seen is hidden, but the account has Premium")
    return PrivacyReport(ok=False, detail=HIDDEN_DETAIL)

"""The sandbox's model of Telegram: users, tracker accounts, contacts, statuses, access hashes, auth keys."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telethon.crypto import AuthKey
from telethon.tl import types

from seeonline.sandbox.privacy import Privacy, status_seen_by

# How long an "online" status lasts without a refresh, like Telegram's ~5 minute expiry.
DEFAULT_ONLINE_SECONDS = 300
DEFAULT_LOGIN_CODE = "12345"
_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_ACCOUNT_ID_BASE = 7_000_000_000
_PERSON_ID_BASE = 6_000_000_000

PushListener = Callable[[int, Any], None]


class WorldError(ValueError):
    """A request to change the world that cannot be satisfied (duplicate username, unknown person...)."""


def normalize_phone(phone: str) -> str:
    """Digits only, the way Telethon sends phone numbers."""
    return "".join(ch for ch in phone if ch.isdigit())


def normalize_username(username: str) -> str:
    """Lower-case without a leading ``@``; Telegram usernames are case-insensitive."""
    return username.strip().lstrip("@").lower()


@dataclass
class SandboxUser:
    """One Telegram user as the server knows it (a simulated person or a tracker account)."""

    id: int
    first_name: str
    username: str | None = None
    phone: str | None = None
    privacy: Privacy = Privacy.EVERYBODY
    contacts: set[int] = field(default_factory=set)
    online_until: float | None = None
    was_online: float = 0.0
    is_account: bool = False
    premium: bool = False

    def is_online(self, now: float) -> bool:
        """Whether an online status is still unexpired at ``now``."""
        return self.online_until is not None and self.online_until > now

    def last_seen(self, now: float) -> float:
        """When the user was last online (``now`` while online; an expired online ends at its expiry)."""
        if self.is_online(now):
            return now
        return max(self.was_online, self.online_until or 0.0)


@dataclass
class Account:
    """A user that can log in: a tracker account with its API credentials and login secrets."""

    user: SandboxUser
    api_id: int
    api_hash: str
    password: str | None = None
    login_code: str = DEFAULT_LOGIN_CODE
    password_hint: str | None = None
    banned: bool = False  # auth.sendCode answers PHONE_NUMBER_BANNED

    @property
    def id(self) -> int:
        """The account's Telegram user id."""
        return self.user.id

    @property
    def phone(self) -> str:
        """The account's phone number (digits only)."""
        return self.user.phone or ""


@dataclass
class KeyBinding:
    """An auth key the server knows, and the account logged in on it (None while logged out)."""

    auth_key: AuthKey
    account_id: int | None = None


class World:
    """All sandbox state; every mutation happens on the server's event loop."""

    def __init__(self, seed: str | None = None) -> None:
        # The secret makes access hashes and pre-authorized keys unforgeable, and reproducible with a seed.
        self.secret = hashlib.sha256(seed.encode()).digest() if seed is not None else os.urandom(32)
        self.users: dict[int, SandboxUser] = {}
        self.accounts: dict[int, Account] = {}
        self.keys: dict[int, KeyBinding] = {}
        self._by_username: dict[str, int] = {}
        self._by_phone: dict[str, int] = {}
        self._watchers: dict[int, set[int]] = {}
        self._listeners: list[PushListener] = []
        self._key_generation: dict[int, int] = {}
        self._next_account = 0
        self._next_person = 0

    # --- building the world -------------------------------------------------------------------

    def add_account(
        self,
        phone: str | None = None,
        *,
        username: str | None = None,
        first_name: str | None = None,
        password: str | None = None,
        privacy: Privacy | str = Privacy.EVERYBODY,
        api_id: int | None = None,
        api_hash: str | None = None,
        login_code: str = DEFAULT_LOGIN_CODE,
        password_hint: str | None = None,
        banned: bool = False,
        premium: bool = False,
    ) -> Account:
        """Create a tracker account (phones default to Telegram's 99966XYYYY test range)."""
        self._next_account += 1
        number = self._next_account
        user = SandboxUser(
            id=_ACCOUNT_ID_BASE + number,
            first_name=first_name or f"Tracker {number}",
            phone=normalize_phone(phone) if phone else f"999662{number:04d}",
            privacy=Privacy(privacy),
            is_account=True,
            was_online=time.time() - 60,
            premium=premium,
        )
        self._insert(user, username)
        digest = hmac.new(self.secret, f"api:{user.id}".encode(), hashlib.sha256).hexdigest()
        account = Account(
            user=user,
            api_id=api_id if api_id is not None else 100_000 + number,
            api_hash=api_hash or digest[:32],
            password=password,
            login_code=login_code,
            password_hint=password_hint,
            banned=banned,
        )
        self.accounts[user.id] = account
        return account

    def add_person(
        self,
        username: str,
        *,
        privacy: Privacy | str = Privacy.EVERYBODY,
        phone: str | None = None,
        first_name: str | None = None,
        online: bool = False,
        last_seen_ago: float = 3600.0,
    ) -> SandboxUser:
        """Create a simulated person that trackers can resolve, add as a contact and watch."""
        self._next_person += 1
        now = time.time()
        user = SandboxUser(
            id=_PERSON_ID_BASE + self._next_person,
            first_name=first_name or username,
            phone=normalize_phone(phone) if phone else None,
            privacy=Privacy(privacy),
            was_online=now - last_seen_ago,
            online_until=now + DEFAULT_ONLINE_SECONDS if online else None,
        )
        self._insert(user, username)
        return user

    def _insert(self, user: SandboxUser, username: str | None) -> None:
        if username is not None:
            key = normalize_username(username)
            if not _USERNAME.match(key):
                raise WorldError(f"invalid username {username!r}")
            if key in self._by_username:
                raise WorldError(f"username {username!r} is taken")
            user.username = username.lstrip("@")
            self._by_username[key] = user.id
        if user.phone:
            if user.phone in self._by_phone:
                raise WorldError(f"phone {user.phone} is taken")
            self._by_phone[user.phone] = user.id
        self.users[user.id] = user

    # --- lookups ------------------------------------------------------------------------------

    def user(self, ref: int | str) -> SandboxUser:
        """A user by Telegram id, ``@username``/username, or phone; raises ``KeyError`` if unknown."""
        if isinstance(ref, int):
            return self.users[ref]
        found = self.find_username(ref)
        if found is None and ref.lstrip("+").isdigit():
            found = self.find_phone(ref) or self.users.get(int(ref))
        if found is None:
            raise KeyError(ref)
        return found

    def account(self, ref: int | str) -> Account:
        """An account by Telegram id, phone or username; raises ``KeyError`` if unknown."""
        user = self.user(ref)
        if user.id not in self.accounts:
            raise KeyError(ref)
        return self.accounts[user.id]

    def find_username(self, username: str) -> SandboxUser | None:
        """The user owning ``username``, if any."""
        user_id = self._by_username.get(normalize_username(username))
        return None if user_id is None else self.users[user_id]

    def find_phone(self, phone: str) -> SandboxUser | None:
        """The user with this phone number, if any."""
        user_id = self._by_phone.get(normalize_phone(phone))
        return None if user_id is None else self.users[user_id]

    def people(self) -> list[SandboxUser]:
        """Every simulated person (users that are not accounts)."""
        return [u for u in self.users.values() if not u.is_account]

    # --- access hashes ------------------------------------------------------------------------

    def access_hash(self, viewer_id: int, target_id: int) -> int:
        """The access hash ``viewer_id`` gets for ``target_id``; useless to any other account."""
        digest = hmac.new(self.secret, struct.pack("<qq", viewer_id, target_id), hashlib.sha256).digest()
        value: int = struct.unpack("<q", digest[:8])[0]
        return value

    def check_access_hash(self, viewer_id: int, target_id: int, access_hash: int) -> bool:
        """Whether ``access_hash`` is the one this viewer obtained for this target."""
        return target_id in self.users and access_hash == self.access_hash(viewer_id, target_id)

    # --- what a viewer sees -------------------------------------------------------------------

    def status_view(self, viewer_id: int, target_id: int, now: float | None = None) -> Any:
        """The ``UserStatus`` the viewer sees for the target right now."""
        return status_seen_by(self.users[viewer_id], self.users[target_id], time.time() if now is None else now)

    def user_view(self, viewer_id: int, target_id: int, now: float | None = None) -> Any:
        """The ``User`` object the viewer receives for the target (its own access hash, status, flags)."""
        target = self.users[target_id]
        viewer = self.users[viewer_id]
        is_self = viewer_id == target_id
        contact = target_id in viewer.contacts
        return types.User(
            id=target.id,
            is_self=is_self or None,
            contact=contact or None,
            mutual_contact=(contact and viewer_id in target.contacts) or None,
            access_hash=self.access_hash(viewer_id, target_id),
            first_name=target.first_name,
            username=target.username,
            phone=target.phone if (is_self or contact) else None,
            status=self.status_view(viewer_id, target_id, now),
            premium=target.premium or None,
        )

    def watchers(self, target_id: int) -> set[int]:
        """Accounts that have the target in their contacts (the only ones pushed its status)."""
        return {w for w in self._watchers.get(target_id, set()) if w in self.accounts}

    # --- mutations that may push updates ------------------------------------------------------

    def add_listener(self, listener: PushListener) -> None:
        """Register ``listener(account_id, updates)``, called for every status push."""
        self._listeners.append(listener)

    @contextmanager
    def _pushing_changes(self, target_id: int) -> Iterator[None]:
        """Push ``UpdateUserStatus`` to each watcher whose view of the target changed inside the block."""
        watchers = self.watchers(target_id)
        now = time.time()
        before = {w: bytes(self.status_view(w, target_id, now)) for w in watchers}
        yield
        now = time.time()
        for watcher in watchers | self.watchers(target_id):
            status = self.status_view(watcher, target_id, now)
            if before.get(watcher) != bytes(status):
                update = types.UpdateShort(
                    update=types.UpdateUserStatus(user_id=target_id, status=status),
                    date=datetime.fromtimestamp(int(now), tz=UTC),
                )
                for listener in self._listeners:
                    listener(watcher, update)

    def set_status(
        self, ref: int | str, *, online: bool, expires_in: float = DEFAULT_ONLINE_SECONDS, push: bool = True
    ) -> SandboxUser:
        """Set a user online (until now + ``expires_in``) or offline (now), pushing to watchers unless told not to."""
        user = self.user(ref)
        now = time.time()
        if push:
            with self._pushing_changes(user.id):
                self._apply_status(user, online, now, expires_in)
        else:
            self._apply_status(user, online, now, expires_in)
        return user

    @staticmethod
    def _apply_status(user: SandboxUser, online: bool, now: float, expires_in: float) -> None:
        if online:
            user.online_until = now + expires_in
        else:
            if user.is_online(now):
                user.was_online = now
            user.online_until = None

    def set_privacy(self, ref: int | str, privacy: Privacy | str) -> SandboxUser:
        """Change who may see the user's last-seen; watchers whose view changes get a push."""
        user = self.user(ref)
        with self._pushing_changes(user.id):
            user.privacy = Privacy(privacy)
        return user

    def add_contact(self, owner_id: int, target_id: int) -> None:
        """Put ``target_id`` in ``owner_id``'s contact list."""
        if target_id not in self.users or owner_id not in self.users:
            raise WorldError("unknown user")
        self.users[owner_id].contacts.add(target_id)
        self._watchers.setdefault(target_id, set()).add(owner_id)

    def remove_contact(self, owner_id: int, target_id: int) -> None:
        """Take ``target_id`` out of ``owner_id``'s contact list."""
        self.users[owner_id].contacts.discard(target_id)
        self._watchers.get(target_id, set()).discard(owner_id)

    # --- auth keys ----------------------------------------------------------------------------

    def register_key(self, auth_key: AuthKey, account_id: int | None = None) -> KeyBinding:
        """Remember an auth key (from a handshake, or made for a pre-authorized session)."""
        binding = KeyBinding(auth_key=auth_key, account_id=account_id)
        self.keys[auth_key.key_id] = binding
        return binding

    def preauthorized_key(self, account_id: int) -> AuthKey:
        """A logged-in auth key for the account, derived from the secret so a seeded world reproduces it."""
        # A revoked key must stay revoked, so each revocation moves the account to a new key.
        generation = self._key_generation.get(account_id, 0)
        material = b"".join(
            hmac.new(self.secret, f"key:{account_id}:{generation}:{i}".encode(), hashlib.sha256).digest()
            for i in range(8)
        )
        auth_key = AuthKey(material)
        # Registering again must not undo a logOut on this very key.
        if auth_key.key_id not in self.keys:
            self.register_key(auth_key, account_id)
        return auth_key

    def find_app(self, api_id: int, api_hash: str) -> Account | None:
        """The account whose API credentials these are (the sandbox's stand-in for registered apps)."""
        for account in self.accounts.values():
            if account.api_id == api_id and hmac.compare_digest(account.api_hash.encode(), api_hash.encode()):
                return account
        return None

    def account_for_key(self, key_id: int) -> Account | None:
        """The account logged in on this key, or None (unknown key, logged out, or revoked)."""
        binding = self.keys.get(key_id)
        if binding is None or binding.account_id is None:
            return None
        return self.accounts.get(binding.account_id)

    def revoke(self, account_id: int) -> int:
        """Log the account out of every key (as "terminate all sessions" does); returns how many."""
        revoked = 0
        self._key_generation[account_id] = self._key_generation.get(account_id, 0) + 1
        for binding in self.keys.values():
            if binding.account_id == account_id:
                binding.account_id = None
                revoked += 1
        return revoked

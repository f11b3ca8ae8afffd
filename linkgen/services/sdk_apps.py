"""The apps the SDK endpoints serve: SDK key authentication and the per-process app cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from linkgen.domain.attribution import AppRules
from linkgen.domain.clevertap import IntegrationSettings
from linkgen.domain.errors import NotFound, Unauthorized
from linkgen.domain.windows import CLICK_LOOKBACK, REENGAGEMENT_WINDOW, read_window
from linkgen.services.accounts import hash_key
from linkgen.storage.db import Database
from linkgen.storage.models import App

# "lifetime" as an app-wide re-engagement window: long enough to never end.
LIFETIME = timedelta(days=36500)


@dataclass(frozen=True)
class SdkApp:
    """What the SDK endpoints need to know about an app (cached by SDK key hash)."""

    pk: int
    app_id: str
    platform: str
    rules: AppRules
    key_hash: str  # the hash of the SDK key it was found by (the cache key; never the key)


class AppFields(Protocol):
    """The app columns attribution reads (an ORM `App` or a row of them)."""

    id: int
    app_id: str
    platform: str
    click_lookback: str
    reengagement_window: str
    reattribution_window_days: int
    probabilistic_matching: bool


def app_rules(app: AppFields) -> AppRules:
    """The attribution settings of an app (bad stored values fall back to the defaults)."""
    lookback, _ = read_window(app.click_lookback, CLICK_LOOKBACK)
    window, lifetime = read_window(app.reengagement_window, REENGAGEMENT_WINDOW)
    defaults = AppRules()
    return AppRules(
        click_lookback=lookback or defaults.click_lookback,
        reengagement_window=LIFETIME if lifetime else (window or defaults.reengagement_window),
        reattribution_window=timedelta(days=app.reattribution_window_days),
        probabilistic_matching=bool(app.probabilistic_matching),
    )


def sdk_app(app: AppFields | None, key_hash: str) -> SdkApp | None:
    if app is None:
        return None
    return SdkApp(
        pk=app.id, app_id=app.app_id, platform=app.platform, rules=app_rules(app), key_hash=key_hash
    )


class AppCache:
    """Per process: SDK key hash -> app, and app id -> CleverTap integration settings.

    Every app PATCH and integration PUT bumps the `apps` cache epoch (linkgen/storage/epochs.py)
    in its own transaction. An entry remembers the epoch read before it was loaded; each launch
    and event transaction reads the epoch once and uses an entry only when the epoch has not
    moved since, else reloads it in that transaction. So an edit made in any process is seen by
    the next launch everywhere (a rotated key is refused at once, new settings apply at once),
    while a launch costs one primary-key read instead of the app and settings look-ups.

    The first look at a key (`get`, before any transaction, to answer 401 / 404 without one)
    takes any entry; an app loaded there carries no epoch, so its first transaction reloads it.
    Unknown keys are remembered for `negative_ttl` seconds (no transaction checks them), so
    guessing keys costs no query. Past `max_entries` a table is cleared whole.
    """

    def __init__(self, negative_ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        # key hash -> (epoch or None, app or None, expiry of a negative entry)
        self._apps: dict[str, tuple[int | None, SdkApp | None, float]] = {}
        self._settings: dict[str, tuple[int, IntegrationSettings]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str, load: Callable[[str], SdkApp | None]) -> SdkApp | None:
        """The app of a key hash as last seen, loading it on a miss."""
        entry = self._apps.get(key_hash)
        if entry is not None and (entry[1] is not None or entry[2] > time.monotonic()):
            return entry[1]
        app = load(key_hash)
        self._put(self._apps, key_hash, (None, app, time.monotonic() + self.negative_ttl))
        return app

    def confirm(self, app: SdkApp, epoch: int, load: Callable[[str], SdkApp | None]) -> SdkApp:
        """`app` as of `epoch` (read in the caller's transaction); 401 when its key is gone."""
        entry = self._apps.get(app.key_hash)
        if entry is not None and entry[0] == epoch and entry[1] is not None:
            current: SdkApp | None = entry[1]
        else:
            current = load(app.key_hash)
            expiry = time.monotonic() + self.negative_ttl
            self._put(self._apps, app.key_hash, (epoch, current, expiry))
        if current is None or current.app_id != app.app_id:
            raise Unauthorized("unknown SDK key")  # rotated since the request's first look
        return current

    def settings(
        self, app_id: str, epoch: int, load: Callable[[], IntegrationSettings]
    ) -> IntegrationSettings:
        """The app's CleverTap settings as of `epoch`, loading them when the epoch moved."""
        entry = self._settings.get(app_id)
        if entry is not None and entry[0] == epoch:
            return entry[1]
        settings = load()
        self._put(self._settings, app_id, (epoch, settings))
        return settings

    def _put(self, table: dict[str, Any], key: str, value: Any) -> None:
        with self._lock:
            if len(table) >= self.max_entries:
                table.clear()
            table[key] = value

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._apps.clear()
            self._settings.clear()


def _load_app(db: Database, key_hash: str) -> SdkApp | None:
    with db.sessions() as session:
        return load_app_in(session, key_hash)


def load_app_in(session: Session, key_hash: str) -> SdkApp | None:
    app = session.scalar(select(App).where(App.sdk_key_hash == key_hash))
    return sdk_app(app, key_hash)


def authenticate_sdk(db: Database, cache: AppCache, app_id: str, raw_key: str | None) -> SdkApp:
    """The app an SDK request is for, checked against its `X-SDK-Key`.

    Order: no key, or a key no app has -> 401, whatever the app id (a caller without a key
    learns nothing about which apps exist); a valid key of another app -> 404 when `app_id`
    names no app, else 401. The transaction that follows confirms the app (`AppCache.confirm`).
    """
    if raw_key is None or not raw_key.strip():
        raise Unauthorized("send the app's SDK key in the X-SDK-Key header")
    app = cache.get(hash_key(raw_key.strip()), lambda h: _load_app(db, h))
    if app is None:
        raise Unauthorized("unknown SDK key")
    if app.app_id != app_id:
        with db.sessions() as session:
            exists = session.scalar(select(App.id).where(App.app_id == app_id)) is not None
        if not exists:
            raise NotFound(f"no app {app_id!r}", field="app_id")
        raise Unauthorized("this SDK key belongs to another app")
    return app

"""The HTTP edge of the hash-sharing exchanges: NCMEC's hash-sharing API and Meta's ThreatExchange, pulled
into a named bank when configured.

python-threatexchange's own clients speak the wire formats (`NCMECHashAPI`: NCMEC's XML `/v2/entries`
with its `paging/next` cursor; `ThreatExchangeAPI`: the Graph API JSON of `/<privacy group>/threat_updates`
with `paging.next`); `vigil.safety.hashing.exchanges` folds the pages into live PDQ hashes. A sync fetches
every page first and only then replaces the bank's entries in one transaction, so an error on any page
(HTTP status, unreachable host, malformed body) raises `ExchangeError` and leaves the bank untouched.

Configuration (environment, kept out of `Settings`, like the hash-list keys):
- `VIGIL_NCMEC_USERNAME`, `VIGIL_NCMEC_PASSWORD`, `VIGIL_NCMEC_ENVIRONMENT` (a `NCMECEnvironment` name,
  default `Industry`), `VIGIL_NCMEC_BASE_URL` (overrides the environment's URL), `VIGIL_NCMEC_BANK`
  (default `ncmec`), `VIGIL_NCMEC_ONLY_ESP_IDS` (comma-separated member ids).
- `VIGIL_THREATEXCHANGE_ACCESS_TOKEN` (`<app id>|<secret>`), `VIGIL_THREATEXCHANGE_PRIVACY_GROUP`,
  `VIGIL_THREATEXCHANGE_BASE_URL` (default the Graph API version threatexchange pins),
  `VIGIL_THREATEXCHANGE_BANK` (default `threatexchange`).
"""

from __future__ import annotations

import asyncio
import enum
import json
from typing import Any

import requests
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from threatexchange.exchanges.clients.fb_threatexchange.api import ThreatExchangeAPI, is_valid_app_token
from threatexchange.exchanges.clients.fb_threatexchange.threat_updates import ThreatUpdateJSON
from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEntryUpdate, NCMECEnvironment, NCMECHashAPI
from threatexchange.exchanges.impl.fb_threatexchange_api import FBThreatExchangeIndicatorRecord

from vigil.errors import NotFoundError, ValidationError, VigilError
from vigil.safety.hashing.banks import BankEntry
from vigil.safety.hashing.exchanges import TeKey, ncmec_bank_entries, threatexchange_bank_entries
from vigil.server.context import ServerContext
from vigil.server.services import hashlist

__all__ = [
    "Exchange",
    "ExchangeError",
    "NcmecSettings",
    "ThreatExchangeSettings",
    "configured_exchanges",
    "fetch_ncmec",
    "fetch_threatexchange",
    "sync_exchange",
]

TIMEOUT_SECONDS = 60
TE_PAGE_SIZE = 500


class Exchange(enum.StrEnum):
    NCMEC = "ncmec"
    THREATEXCHANGE = "threatexchange"


class ExchangeError(VigilError):
    """An exchange refused the request, could not be reached, or answered something unreadable."""

    code = "exchange_error"


class NcmecSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_NCMEC_", extra="ignore")

    username: str | None = None
    password: SecretStr | None = None
    environment: str = "Industry"
    base_url: str | None = None
    bank: str = "ncmec"
    only_esp_ids: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.username and self.password)

    def esp_ids(self) -> frozenset[int]:
        """Raises ValidationError."""
        try:
            return frozenset(int(x) for x in self.only_esp_ids.split(",") if x.strip())
        except ValueError as error:
            raise ValidationError("VIGIL_NCMEC_ONLY_ESP_IDS is comma-separated member ids") from error

    def base(self) -> str:
        """Raises ValidationError for an unknown environment name."""
        if self.base_url:
            return self.base_url.rstrip("/")
        try:
            return NCMECEnvironment[self.environment].value
        except KeyError as error:
            names = ", ".join(e.name for e in NCMECEnvironment)
            raise ValidationError(f"VIGIL_NCMEC_ENVIRONMENT is one of {names}") from error


class ThreatExchangeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_THREATEXCHANGE_", extra="ignore")

    access_token: SecretStr | None = None
    privacy_group: int | None = None
    base_url: str | None = None
    bank: str = "threatexchange"

    @property
    def configured(self) -> bool:
        return self.access_token is not None and self.privacy_group is not None


def configured_exchanges() -> dict[Exchange, str]:
    """Each configured exchange and the bank it fills."""
    out: dict[Exchange, str] = {}
    ncmec, te = NcmecSettings(), ThreatExchangeSettings()
    if ncmec.configured:
        out[Exchange.NCMEC] = ncmec.bank
    if te.configured:
        out[Exchange.THREATEXCHANGE] = te.bank
    return out


class _NcmecClient(NCMECHashAPI):
    """threatexchange's NCMEC client with its base URL overridable (a proxy, or a test stand-in)."""

    def __init__(self, username: str, password: str, base_url: str) -> None:
        super().__init__(username, password, NCMECEnvironment.Industry)
        self._base_url = base_url


class _ThreatExchangeClient(ThreatExchangeAPI):
    """threatexchange's Graph API client, with a timeout on GETs (its own has none)."""

    def get_json_from_url(self, url: Any, params: Any = None, *, json_obj_hook: Any = None) -> Any:
        response = requests.get(url, params=params or {}, timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        return response.json(object_hook=json_obj_hook)


def _http_detail(response: requests.Response) -> str:
    """The error message in a Graph API error body, else the start of the body."""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            return f"{error.get('type', 'error')}: {str(error.get('message', ''))[:200]}"
    except ValueError:
        pass
    return " ".join(response.text.split())[:200]


def _wrap(exchange: Exchange, error: Exception) -> ExchangeError:
    if isinstance(error, requests.HTTPError) and error.response is not None:
        r = error.response
        return ExchangeError(f"{exchange.value} answered HTTP {r.status_code} {r.reason}: {_http_detail(r)}")
    if isinstance(error, requests.RequestException):
        return ExchangeError(f"cannot reach {exchange.value}: {type(error).__name__}")
    return ExchangeError(f"{exchange.value} sent a response Vigil cannot read ({type(error).__name__})")


def fetch_ncmec(settings: NcmecSettings, *, end_timestamp: int) -> list[BankEntry]:
    """Every page of NCMEC entries up to `end_timestamp`, folded into live PDQ entries. Blocking (run it
    in a thread). Raises ValidationError (not configured) or ExchangeError."""
    if not settings.configured or settings.username is None or settings.password is None:
        raise ValidationError("NCMEC is not configured: set VIGIL_NCMEC_USERNAME and VIGIL_NCMEC_PASSWORD")
    client = _NcmecClient(settings.username, settings.password.get_secret_value(), settings.base())
    esp_ids = settings.esp_ids()
    pages: list[list[NCMECEntryUpdate]] = []
    try:
        for response in client.get_entries_iter(start_timestamp=0, end_timestamp=end_timestamp):
            pages.append(response.updates)
    except Exception as error:  # the edge: any failure of the client or its parser, named below
        raise _wrap(Exchange.NCMEC, error) from error
    return ncmec_bank_entries(pages, only_esp_ids=esp_ids)


def fetch_threatexchange(settings: ThreatExchangeSettings) -> list[BankEntry]:
    """Every page of the privacy group's /threat_updates, folded into live PDQ entries. Blocking (run it
    in a thread). Raises ValidationError (not configured, malformed token) or ExchangeError."""
    if settings.access_token is None or settings.privacy_group is None:
        raise ValidationError(
            "ThreatExchange is not configured: set VIGIL_THREATEXCHANGE_ACCESS_TOKEN and "
            "VIGIL_THREATEXCHANGE_PRIVACY_GROUP"
        )
    token = settings.access_token.get_secret_value()
    if not is_valid_app_token(token):
        raise ValidationError("VIGIL_THREATEXCHANGE_ACCESS_TOKEN is '<app id>|<secret>'")
    client = _ThreatExchangeClient(token, endpoint_override=settings.base_url or None)
    app_id = int(token.partition("|")[0])
    pages: list[dict[TeKey, FBThreatExchangeIndicatorRecord | None]] = []
    try:
        # FBThreatExchangeSignalExchangeAPI.fetch_iter, minus its assertion that no page is empty (an
        # empty privacy group answers one empty page).
        cursor = client.get_threat_updates(
            settings.privacy_group,
            page_size=TE_PAGE_SIZE,
            fields=FBThreatExchangeIndicatorRecord.te_threat_updates_fields(),
            decode_fn=ThreatUpdateJSON,
        )
        for batch in cursor:
            pages.append(
                {
                    (u.threat_type, u.indicator): FBThreatExchangeIndicatorRecord.from_threatexchange_json(
                        app_id, u
                    )
                    for u in batch
                }
            )
    except Exception as error:  # the edge: any failure of the client or its parser, named below
        raise _wrap(Exchange.THREATEXCHANGE, error) from error
    try:
        return threatexchange_bank_entries(pages, privacy_group=settings.privacy_group)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as error:
        raise _wrap(Exchange.THREATEXCHANGE, error) from error


async def sync_exchange(ctx: ServerContext, exchange: Exchange, *, actor: str) -> hashlist.SyncResult:
    """Fetches the exchange's current PDQ hashes and makes its bank hold exactly those (creating the bank,
    normal kind, if missing). Raises ValidationError (not configured), ExchangeError (nothing changed)."""
    match exchange:
        case Exchange.NCMEC:
            ncmec = NcmecSettings()
            bank = ncmec.bank
            end = ctx.clock_ms() // 1000
            entries = await asyncio.to_thread(fetch_ncmec, ncmec, end_timestamp=end)
        case Exchange.THREATEXCHANGE:
            te = ThreatExchangeSettings()
            bank = te.bank
            entries = await asyncio.to_thread(fetch_threatexchange, te)
    try:
        return await hashlist.sync_bank_entries(ctx, bank, entries, actor=actor, source=exchange.value)
    except NotFoundError:
        await hashlist.create_bank(ctx, bank, actor=actor)
        return await hashlist.sync_bank_entries(ctx, bank, entries, actor=actor, source=exchange.value)

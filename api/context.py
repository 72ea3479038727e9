"""The process-wide collaborators every service needs, built once by the app factory (or CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from piccolo.engine.base import Engine

from accounts.revocations import token_revocation_markers
from accounts.tokens import TokenService
from core.daily_counts import DailyCountRegistry
from core.settings import Settings
from core.store import Store, build_store
from credit.authorizations import ended_markers
from credit.identity import FieldCipher
from credit.ledger import LedgerWriter
from credit.queries import RECENT
from partners.adapters import IdentityVerifier, JwksPeerCities, PeerCities, build_identity_verifier, parse_peer_cities
from partners.limits import PartnerDirectory, PartnerLimiter
from partners.services import suspension_markers
from partners.sms import DevSmsSender, HttpSmsGateway, SmsSender
from partners.wechat import WechatSubscribeClient


@dataclass(slots=True)
class AppContext:
    settings: Settings
    engine: Engine[Any]
    store: Store
    tokens: TokenService
    cipher: FieldCipher
    sms: SmsSender
    ledger: LedgerWriter
    limiter: PartnerLimiter
    partners: PartnerDirectory
    identity: IdentityVerifier
    peers: PeerCities
    daily_counts: DailyCountRegistry
    wechat: WechatSubscribeClient | None = None  # mini-program subscribe messages, when configured

    async def close(self) -> None:
        """Release what the collaborators hold (the engine is opened and closed by its owner)."""
        await self.ledger.close()
        await self.store.close()
        await self.sms.close()
        await self.identity.close()
        if self.wechat is not None:
            await self.wechat.close()


def build_context(settings: Settings, engine: Engine[Any]) -> AppContext:
    """Every collaborator the settings ask for, for the app and for CLI commands alike."""
    store = build_store(settings.redis_url, settings.redis_namespace)
    partners = PartnerDirectory()
    watch_store_loss(store, partners)
    return AppContext(settings=settings, engine=engine, store=store,
                      tokens=build_tokens(settings), cipher=build_cipher(settings), sms=build_sms(settings),
                      ledger=LedgerWriter(engine), limiter=build_limiter(settings, store), partners=partners,
                      identity=build_identity(settings), peers=build_peers(settings),
                      daily_counts=build_daily_counts(), wechat=build_wechat(settings))


def build_daily_counts() -> DailyCountRegistry:
    """The domains' contributions to the daily statistics (credit/stats.py reads them, imports neither)."""
    # Imported here: the domains' modules import this one (for AppContext) through their routes' helpers.
    from lending import stats as lending_stats  # noqa: PLC0415
    from scenarios import daily_counts as scenario_counts  # noqa: PLC0415

    registry = DailyCountRegistry()
    registry.register(name="scenarios", metrics=scenario_counts.METRICS, count=scenario_counts.count_window)
    registry.register(name="lending", metrics=lending_stats.DAILY_METRICS, count=lending_stats.count_window)
    return registry


def watch_store_loss(store: Store, partners: PartnerDirectory) -> None:
    """What an emptied store is seeded with again (every revocation marker, from the database), and the
    in-memory views each process drops when it sees that happened."""
    for source in (token_revocation_markers, suspension_markers, ended_markers):
        store.add_marker_source(source)
    store.on_reseed(RECENT.clear)
    store.on_reseed(partners.clear)


def build_tokens(settings: Settings) -> TokenService:
    return TokenService(
        private_seed=settings.jwt_private_key,
        key_id=settings.jwt_key_id,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway=settings.jwt_leeway_seconds,
    )


def build_cipher(settings: Settings) -> FieldCipher:
    return FieldCipher(data_key=settings.data_key, hash_key=settings.hash_key)


def build_sms(settings: Settings) -> SmsSender:
    if settings.sms_adapter == "http" and settings.sms_gateway_url:
        return HttpSmsGateway(url=settings.sms_gateway_url, token=settings.sms_gateway_token)
    return DevSmsSender()


def build_wechat(settings: Settings) -> WechatSubscribeClient | None:
    if not (settings.wechat_api_base_url and settings.wechat_appid and settings.wechat_secret):
        return None
    return WechatSubscribeClient(base_url=settings.wechat_api_base_url, appid=settings.wechat_appid,
                                 secret=settings.wechat_secret)


def build_limiter(settings: Settings, store: Store) -> PartnerLimiter:
    return PartnerLimiter(store=store, default_per_second=settings.default_rate_limit_per_second,
                          default_per_day=settings.default_daily_quota)


def build_identity(settings: Settings) -> IdentityVerifier:
    return build_identity_verifier(url=settings.identity_verifier_url, token=settings.identity_verifier_token)


def build_peers(settings: Settings) -> PeerCities:
    return JwksPeerCities(peers=parse_peer_cities(settings.peer_cities),
                          allow_loopback=settings.webhook_allow_loopback)

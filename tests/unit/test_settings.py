"""Settings are read once from the environment; production refuses placeholders and missing secrets."""

from __future__ import annotations

import base64

import pytest

from core.errors import ConfigurationError
from core.settings import Settings, dev_secret, generate_secret

PRODUCTION = {
    "XINYI_ENV": "production",
    "DATABASE_URL": "postgresql://db/xinyi",
    "REDIS_URL": "redis://cache:6379/0",
    "XINYI_SMS_GATEWAY_URL": "https://sms.example/send",
    "XINYI_JWT_PRIVATE_KEY": generate_secret(),
    "XINYI_DATA_KEY": generate_secret(),
    "XINYI_HASH_KEY": generate_secret(),
    "XINYI_CONSENT_KEY": generate_secret(),
}


def test_dev_defaults_are_safe_and_embedded() -> None:
    settings = Settings.from_env({})
    assert settings.env == "dev"
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.sms_adapter == "dev"
    assert settings.max_body_bytes == 1024 * 1024


def test_complete_production_settings_are_accepted() -> None:
    settings = Settings.from_env(PRODUCTION)
    assert settings.is_production
    assert settings.sms_adapter == "http"


@pytest.mark.parametrize("missing", ["XINYI_JWT_PRIVATE_KEY", "XINYI_DATA_KEY", "XINYI_HASH_KEY",
                                     "XINYI_CONSENT_KEY", "DATABASE_URL", "REDIS_URL", "XINYI_SMS_GATEWAY_URL"])
def test_production_refuses_missing_values(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        Settings.from_env(env)


def test_production_refuses_development_placeholders() -> None:
    env = {**PRODUCTION, "XINYI_DATA_KEY": base64.b64encode(dev_secret("data_key")).decode()}
    with pytest.raises(ConfigurationError, match="placeholder"):
        Settings.from_env(env)


def test_production_refuses_the_dev_sms_adapter() -> None:
    with pytest.raises(ConfigurationError, match="dev SMS"):
        Settings.from_env({**PRODUCTION, "XINYI_SMS_ADAPTER": "dev"})


@pytest.mark.parametrize(("var", "value"), [("XINYI_DATA_KEY", "short"), ("XINYI_HASH_KEY", "!!notbase64!!"),
                                            ("XINYI_ENV", "staging"), ("XINYI_OTP_TTL_SECONDS", "five")])
def test_malformed_values_are_refused(var: str, value: str) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env({var: value})


def test_leeway_is_capped_at_sixty_seconds() -> None:
    assert Settings.from_env({"XINYI_JWT_LEEWAY_SECONDS": "600"}).jwt_leeway_seconds == 60


def test_app_factory_refuses_unsafe_production(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.app import create_app

    monkeypatch.setenv("XINYI_ENV", "production")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigurationError):
        create_app()


def test_public_url_defaults_to_the_local_server_in_dev_and_to_the_issuer_in_production() -> None:
    assert Settings.from_env({}).public_url == "http://127.0.0.1:8000"
    assert Settings.from_env({"XINYI_PUBLIC_URL": "http://127.0.0.1:9000/"}).public_url == "http://127.0.0.1:9000"
    issuer = "https://credit.jiaxing.example"
    settings = Settings.from_env({**PRODUCTION, "XINYI_JWT_ISSUER": issuer})
    assert (settings.public_url, settings.jwt_issuer) == (issuer, issuer)


@pytest.mark.parametrize("value", ["credit.example", "ftp://credit.example", "https://credit.example/?a=1",
                                   "https://credit.example/#x", "https://"])
def test_public_url_must_be_an_absolute_http_url(value: str) -> None:
    with pytest.raises(ConfigurationError, match="XINYI_PUBLIC_URL"):
        Settings.from_env({"XINYI_PUBLIC_URL": value})


def test_production_public_url_is_https_and_the_issuer() -> None:
    """RFC 8414 §3.3: clients discard metadata whose issuer is not the URL they fetched it from."""
    with pytest.raises(ConfigurationError, match="https"):
        Settings.from_env({**PRODUCTION, "XINYI_PUBLIC_URL": "http://credit.example"})
    with pytest.raises(ConfigurationError, match="XINYI_JWT_ISSUER"):
        Settings.from_env({**PRODUCTION, "XINYI_PUBLIC_URL": "https://credit.example",
                           "XINYI_JWT_ISSUER": "https://other.example"})

"""Settings are read once from the environment; production refuses placeholders and missing secrets."""

from __future__ import annotations

import base64

import pytest

from api.errors import ConfigurationError
from api.settings import Settings, dev_secret, generate_secret

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

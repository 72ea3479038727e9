"""Settings are read once from the environment; production refuses placeholders and missing secrets."""

from __future__ import annotations

import base64
from pathlib import Path

import msgspec
import pytest

from core.errors import ConfigurationError
from core.settings import Settings, configuration_markdown, dev_secret, generate_secret

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


def test_the_configuration_reference_is_generated_from_the_declaration() -> None:
    """docs/configuration.md is the declaration's output: edit core/settings.py, then regenerate the file."""
    checked_in = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert checked_in == configuration_markdown(), (
        "docs/configuration.md is stale: python -m core.settings --markdown > docs/configuration.md")


def test_every_field_names_its_environment_variable_once() -> None:
    variables = [line.split("`")[1] for line in configuration_markdown().splitlines() if line.startswith("| `")]
    assert len(variables) == len(set(variables)) == len(msgspec.structs.fields(Settings))


@pytest.mark.parametrize(("var", "value", "message"), [
    ("XINYI_SMS_ADAPTER", "smtp", "XINYI_SMS_ADAPTER must be dev or http"),
    ("XINYI_WEBHOOK_TIMEOUT_MS", "5.5", "XINYI_WEBHOOK_TIMEOUT_MS must be an integer"),
    ("XINYI_CREDIT_LINES_FEN", "AAA", "XINYI_CREDIT_LINES_FEN must look like"),
    ("XINYI_PEER_TIER_MAPS", "AAA=AA", "XINYI_PEER_TIER_MAPS must look like")])
def test_malformed_values_name_their_variable(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({var: value})


def test_values_are_read_in_their_declared_syntax() -> None:
    settings = Settings.from_env({"XINYI_WEBHOOK_TIMEOUT_MS": "2500", "XINYI_CORS_ORIGINS": " https://a.example, ,"
                                  "https://b.example", "XINYI_TRUST_FORWARDED_FOR": "yes", "XINYI_LOG_LEVEL": "debug",
                                  "XINYI_CREDIT_LINES_FEN": "AAA=5,B=1", "XINYI_BENEFIT_CODE_TTL_SECONDS": "90",
                                  "XINYI_BACKGROUND_IN_APP": "0", "XINYI_SQLITE_PATH": ""})
    assert settings.webhook_timeout_seconds == 2.5
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.trust_forwarded_for
    assert not settings.background_in_app
    assert (settings.log_level, settings.credit_lines_fen) == ("DEBUG", (("AAA", 5), ("B", 1)))
    assert settings.benefit_code_ttl_seconds == 60
    assert settings.sqlite_path == "xinyi.sqlite"  # empty counts as unset
    assert not Settings.from_env(PRODUCTION).background_in_app

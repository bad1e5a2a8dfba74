"""Server settings from the environment (`VIGIL_*`). Outside dev, default or missing secrets are refused."""

from __future__ import annotations

import enum
import hashlib
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil.errors import ValidationError
from vigil.safety.strikes import parse_thresholds
from vigil.server.db.pseudonyms import derive_pseudonym_key
from vigil.server.ratelimit import Limit, parse_rule

__all__ = [
    "CYBERTIPLINE_PRODUCTION_URL",
    "CYBERTIPLINE_TEST_URL",
    "BlobBackendKind",
    "Environment",
    "Settings",
]

# NCMEC's CyberTipline reporting API (shared/ncmec-cybertipline.md §1). Reports sent to the test base
# are discarded; production is used only when set explicitly, and never in dev.
CYBERTIPLINE_TEST_URL = "https://exttest.cybertip.org/ispws"
CYBERTIPLINE_PRODUCTION_URL = "https://report.cybertip.org/ispws"
_CYBERTIPLINE_PRODUCTION_HOST = "report.cybertip.org"

_FRANKING_KEY_FILE = "franking.key"
_REPORT_KEY_FILE = "report.key"
_NOTICE_KEY_FILE = "notice.key"


class Environment(enum.StrEnum):
    DEV = "dev"
    PROD = "prod"


class BlobBackendKind(enum.StrEnum):
    DISK = "disk"
    POSTGRES = "postgres"
    S3 = "s3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    environment: Environment = Environment.DEV
    data_dir: Path = Path("data")
    database_url: str | None = None
    redis_url: str | None = None
    # Prefix of every Redis key and channel this deployment uses (rate-limit counters, delivery wake-ups).
    # Unset, it is derived from the database URL, so that two deployments sharing one Redis (staging and
    # production, or test servers) neither share counters nor wake each other's sockets.
    redis_namespace: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"
    )
    # HMAC key for server franking tags, hex. In dev it is generated once and kept in the data dir.
    franking_key: SecretStr | None = None
    max_json_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_blob_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    blob_ttl_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    fetch_batch: int = Field(default=100, gt=0, le=1000)
    # How long a worker trusts a device credential it checked (0: query every request). Suspensions and
    # device changes made through any worker, or a console sharing its Redis, invalidate at once; this only
    # bounds a change written by a process outside both (a standalone console without Redis).
    auth_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    # AES-256-GCM key for reported content at rest, hex (32 bytes). In dev generated into the data dir.
    report_key: SecretStr | None = None
    # HMAC key naming accounts in the metadata event log (`vigil.server.db.pseudonyms`), hex (32 bytes).
    # Unset: derived from VIGIL_REPORT_KEY under its own label. To rotate, set the new key here and the one
    # the log was written under in the previous-key setting: every start-up renames the log's accounts
    # from it (and from the derived key once a key is configured), so scoring sees one name per account.
    metadata_pseudonym_key: SecretStr | None = None
    metadata_pseudonym_previous_key: SecretStr | None = None
    report_retention_days: int = Field(default=365, gt=0)
    # Strikes under one policy at which a reviewer's decision escalates (`vigil.safety.strikes`).
    strike_thresholds: str = "restrict=3,suspend=5"
    # Images a reviewer may reveal in a UTC day before the console suggests a break (soft: never blocks).
    console_exposure_soft_limit: int = Field(default=40, gt=0)
    # How long "claim next" locks a case to its reviewer before another reviewer may take it.
    claim_minutes: int = Field(default=30, gt=0, le=24 * 60)
    console_mounted: bool = True  # `vigil serve` serves the review console under /console
    console_secure_cookies: bool = True
    console_session_minutes: int = Field(default=8 * 60, gt=0)
    console_max_failed_logins: int = Field(default=5, gt=0)
    console_lockout_minutes: int = Field(default=15, gt=0)
    # Ed25519 seed (hex, 32 bytes) signing safety notices; not the franking key. Generated in dev.
    notice_signing_key: SecretStr | None = None
    # Minors' protective defaults and behavioural risk (issue 6).
    contact_requests_per_day_new: int = Field(default=20, gt=0)
    new_account_days: int = Field(default=30, ge=0)
    # The 28-day risk-scoring window plus a 7-day margin; shorter starves the scoring of its window.
    metadata_retention_days: int = Field(default=35, ge=28)
    # Risk assessments kept for investigations (scores and reasons over time, `risk_history`).
    risk_history_retention_days: int = Field(default=180, gt=0)
    risk_scoring_interval_seconds: int = Field(default=3600, ge=0)  # 0: no periodic run
    # Retention (issue 16, docs/threat-model.md): every sweep runs on its own every this many seconds,
    # whatever the other settings say; the periods below are what each rule keeps.
    retention_sweep_interval_seconds: float = Field(default=600.0, gt=0)
    delivery_retry_hours: int = Field(default=72, gt=0)  # a delivered message's record, for resends
    queue_retention_days: int = Field(default=30, gt=0)  # a ciphertext no device fetched
    contact_request_retention_days: int = Field(default=30, gt=0)  # after the answer
    notice_retention_days: int = Field(default=90, gt=0)
    voucher_retention_days: int = Field(default=90, gt=0)
    membership_history_days: int = Field(default=90, gt=0)  # a group membership period after it ended
    # Request-rate limits (issue 10), in the `limits` notation ("60/hour", "10/second;300/hour"). Sends
    # are generous (100/s sustained per device); the relay benchmarks raise them further.
    rate_limits_enabled: bool = True
    rate_limit_registrations_per_address: str = "60/hour"
    rate_limit_sends_per_device: str = "6000/minute"
    rate_limit_key_claims_per_requester: str = "600/hour"
    rate_limit_key_claims_per_target: str = "3000/hour"
    rate_limit_contact_requests_per_account: str = "60/hour"
    rate_limit_reports_per_account: str = "30/hour"
    rate_limit_uploads_per_account: str = "600/hour"
    rate_limit_group_joins_per_account: str = "30/hour"
    # Unfetched blobs one account may keep on disk, and free space uploads must leave for the database.
    blob_quota_bytes_per_account: int = Field(default=512 * 1024 * 1024, gt=0)
    blob_disk_reserve_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    # Where blobs live: `disk` (this node's data dir), `postgres` (chunked rows in the Vigil database) or
    # `s3` (a bucket of any S3-compatible store). Several nodes need `postgres` or `s3`.
    blob_backend: BlobBackendKind = BlobBackendKind.DISK
    s3_endpoint: str | None = None  # unset: AWS S3 itself
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # Slow clients: whole request headers within this; a body that stalls this long is cut off.
    request_header_timeout_seconds: float = Field(default=10.0, gt=0)
    request_body_timeout_seconds: float = Field(default=30.0, gt=0)
    # CyberTipline reporting (issue 9); separate from the VIGIL_NCMEC_* hash-sharing credentials.
    cybertipline_url: str = CYBERTIPLINE_TEST_URL
    cybertipline_username: str | None = None
    cybertipline_password: SecretStr | None = None
    # Who files: the reportingPerson's email and the company name agreed with NCMEC (companyTemplate).
    cybertipline_reporter_email: str = Field(default="safety@vigil.example", min_length=3, max_length=255)
    cybertipline_company: str = Field(default="Vigil", min_length=1, max_length=100)
    # A filer holds a per-case lease while filing; when it runs out (the filer died), crash recovery takes
    # the half-done filing over. Renewed before every CyberTipline call, so longer than the slowest call.
    cybertipline_lease_seconds: float = Field(default=300.0, gt=0)

    @field_validator("strike_thresholds")
    @classmethod
    def _strike_thresholds(cls, value: str) -> str:
        parse_thresholds(value)  # raises on a malformed value, so a bad setting fails at start-up
        return value

    @field_validator("cybertipline_url")
    @classmethod
    def _no_production_cybertipline_in_dev(cls, value: str, info: ValidationInfo) -> str:
        """Refuses NCMEC's production CyberTipline when VIGIL_ENVIRONMENT is dev (`environment` is
        declared, so validated, before this field)."""
        try:
            url = urlsplit(value.strip())
            host = (url.hostname or "").rstrip(".")
        except ValueError as error:
            raise ValueError("VIGIL_CYBERTIPLINE_URL is not a valid URL") from error
        if url.scheme.lower() not in ("http", "https") or not host:
            raise ValueError("VIGIL_CYBERTIPLINE_URL must be an http(s) URL")
        environment = info.data.get("environment", Environment.DEV)
        if host == _CYBERTIPLINE_PRODUCTION_HOST and environment is Environment.DEV:
            raise ValueError(
                "VIGIL_CYBERTIPLINE_URL is NCMEC's production CyberTipline; refused with "
                f"VIGIL_ENVIRONMENT=dev (use the test base {CYBERTIPLINE_TEST_URL} or the stand-in)"
            )
        return value

    @field_validator(*(f"rate_limit_{limit.value}" for limit in Limit))
    @classmethod
    def _rate_limit_rule(cls, value: str) -> str:
        parse_rule(value)
        return value

    @model_validator(mode="after")
    def _refuse_missing_or_weak_secrets(self) -> Settings:
        required = self.environment is not Environment.DEV
        _check_hex_secret("VIGIL_FRANKING_KEY", self.franking_key, required=required, at_least=32)
        _check_hex_secret("VIGIL_REPORT_KEY", self.report_key, required=required, exactly=32)
        _check_hex_secret("VIGIL_NOTICE_SIGNING_KEY", self.notice_signing_key, required=required, exactly=32)
        for name, key in (
            ("VIGIL_METADATA_PSEUDONYM_KEY", self.metadata_pseudonym_key),
            ("VIGIL_METADATA_PSEUDONYM_PREVIOUS_KEY", self.metadata_pseudonym_previous_key),
        ):
            _check_hex_secret(name, key, required=False, exactly=32)
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'vigil.db').resolve()}"

    @property
    def resolved_redis_namespace(self) -> str:
        if self.redis_namespace:
            return self.redis_namespace
        digest = hashlib.sha256(self.resolved_database_url.encode()).hexdigest()[:16]
        return f"vigil-{digest}"

    def rate_limit_rules(self) -> dict[Limit, str]:
        """Each limit's rule; none when rate limits are disabled."""
        if not self.rate_limits_enabled:
            return {}
        return {limit: getattr(self, f"rate_limit_{limit.value}") for limit in Limit}

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    def load_franking_key(self) -> bytes:
        """The server's franking HMAC key. Raises ValidationError outside dev when unset."""
        return self._secret_or_dev_file("VIGIL_FRANKING_KEY", self.franking_key, _FRANKING_KEY_FILE)

    def load_report_key(self) -> bytes:
        """The AES-256-GCM key for reported content at rest. Raises ValidationError outside dev when
        unset; in dev it is generated once and kept in the data dir."""
        return self._secret_or_dev_file("VIGIL_REPORT_KEY", self.report_key, _REPORT_KEY_FILE)

    def load_pseudonym_key(self, report_key: bytes | None = None) -> bytes:
        """The metadata log's pseudonym key: VIGIL_METADATA_PSEUDONYM_KEY, or derived from the report key
        (`report_key`, loaded when not given)."""
        if self.metadata_pseudonym_key is not None:
            return bytes.fromhex(self.metadata_pseudonym_key.get_secret_value())
        return derive_pseudonym_key(self.load_report_key() if report_key is None else report_key)

    def previous_pseudonym_keys(self, report_key: bytes | None = None) -> list[bytes]:
        """Keys the log may still name accounts under, newest first: the configured previous key, and the
        derived one once a key is configured (a move from the default); never the current key."""
        current = self.load_pseudonym_key(report_key)
        candidates = []
        if self.metadata_pseudonym_previous_key is not None:
            candidates.append(bytes.fromhex(self.metadata_pseudonym_previous_key.get_secret_value()))
        if self.metadata_pseudonym_key is not None:
            candidates.append(
                derive_pseudonym_key(self.load_report_key() if report_key is None else report_key)
            )
        return [key for key in dict.fromkeys(candidates) if key != current]

    def load_notice_signing_key(self) -> bytes:
        """The Ed25519 seed that signs safety notices. Raises ValidationError outside dev when unset; in
        dev it is generated once and kept in the data dir."""
        return self._secret_or_dev_file("VIGIL_NOTICE_SIGNING_KEY", self.notice_signing_key, _NOTICE_KEY_FILE)

    def _secret_or_dev_file(self, name: str, value: SecretStr | None, filename: str) -> bytes:
        """The configured 32-byte secret; in dev, one generated once and kept (mode 0600) in the data dir."""
        if value is not None:
            return bytes.fromhex(value.get_secret_value())
        if self.environment is not Environment.DEV:
            raise ValidationError(f"{name} must be set outside dev")
        path = self.data_dir / filename
        if path.exists():
            return bytes.fromhex(path.read_text().strip())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        path.write_text(key.hex())
        path.chmod(0o600)
        return key


def _check_hex_secret(
    name: str,
    value: SecretStr | None,
    *,
    required: bool,
    at_least: int | None = None,
    exactly: int | None = None,
) -> None:
    """Raises ValueError (a settings error naming the variable) for a missing, non-hex or wrong-size key."""
    if value is None:
        if required:
            raise ValueError(f"{name} must be set outside dev")
        return
    try:
        raw = bytes.fromhex(value.get_secret_value())
    except ValueError as error:
        raise ValueError(f"{name} must be hex") from error
    if at_least is not None and len(raw) < at_least:
        raise ValueError(f"{name} must be at least {at_least} bytes")
    if exactly is not None and len(raw) != exactly:
        raise ValueError(f"{name} must be {exactly} bytes")

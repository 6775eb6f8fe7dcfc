"""OSS adapter: ``oss://`` URLs, credentials (env or ossutil-style profile) and a bucket factory.

Credentials never leave this module in a printable form: ``Credentials`` hides
the secret and token from ``repr`` and nothing here logs them.
"""

from __future__ import annotations

import configparser
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsctl.errors import InvalidInput, NotFound, ToolkitError, Unavailable

log = logging.getLogger(__name__)

SCHEME = "oss://"
ENV_ID = "OSS_ACCESS_KEY_ID"
ENV_SECRET = "OSS_ACCESS_KEY_SECRET"
ENV_ENDPOINT = "OSS_ENDPOINT"
ENV_TOKEN = "OSS_SECURITY_TOKEN"
ENV_CONFIG = "OSS_CONFIG_FILE"
DEFAULT_CONFIG = Path("~/.ossutilconfig")


@dataclass(frozen=True)
class OssUrl:
    bucket: str
    prefix: str  # no leading or trailing slash; may be ""

    @classmethod
    def parse(cls, url: str) -> OssUrl:
        if not url.startswith(SCHEME):
            raise InvalidInput(f"{url!r}: not an oss:// URL")
        rest = url[len(SCHEME) :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise InvalidInput(f"{url!r}: missing bucket name (oss://bucket/prefix)")
        return cls(bucket=bucket, prefix=prefix.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"


def is_oss(path: str | os.PathLike[str]) -> bool:
    return str(path).startswith(SCHEME)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    endpoint: str
    security_token: str | None = field(default=None, repr=False)
    source: str = "environment"


def load_credentials(
    profile: str | None = None,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """Credentials from ``--profile`` (a config file section), else the environment, else the default profile.

    The config file is ``ossutil``-style INI (``accessKeyID``, ``accessKeySecret``,
    ``endpoint``, optional ``stsToken``), sections ``[Credentials]`` or
    ``[default]`` by default and ``[NAME]`` or ``[profile NAME]`` for ``--profile NAME``.
    """
    env = os.environ if environ is None else environ
    path = (config_file or Path(env.get(ENV_CONFIG, "") or DEFAULT_CONFIG)).expanduser()
    if config_file is not None and not path.is_file():
        raise NotFound(f"--config-file {path}: no such file")
    if profile is None and env.get(ENV_ID):
        missing = [name for name in (ENV_SECRET, ENV_ENDPOINT) if not env.get(name)]
        if missing:
            raise InvalidInput(f"{ENV_ID} is set but {', '.join(missing)} is not")
        return Credentials(env[ENV_ID], env[ENV_SECRET], env[ENV_ENDPOINT], env.get(ENV_TOKEN) or None)
    if profile is None and not path.is_file():
        raise InvalidInput(
            f"no OSS credentials: set {ENV_ID}, {ENV_SECRET} and {ENV_ENDPOINT}, or write {path} "
            "(or pass --profile/--config-file)"
        )
    return _from_profile(path, profile)


def _from_profile(path: Path, profile: str | None) -> Credentials:
    if not path.is_file():
        raise NotFound(f"--config-file {path}: no such file")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise InvalidInput(f"{path}: not an INI file ({exc.__class__.__name__})") from None
    candidates = [profile, f"profile {profile}"] if profile else ["Credentials", "default"]
    section = next((s for s in candidates if s and parser.has_section(s)), None)
    if section is None:
        wanted = f"--profile {profile}" if profile else "default profile"
        raise InvalidInput(f"{path}: no section for {wanted} (looked for {', '.join(map(str, candidates))})")
    values = parser[section]

    def get(*names: str) -> str | None:
        for name in names:
            if values.get(name):
                return values[name].strip()
        return None

    key_id = get("accesskeyid", "access_key_id")
    secret = get("accesskeysecret", "access_key_secret")
    endpoint = get("endpoint")
    missing = [
        n for n, v in (("accessKeyID", key_id), ("accessKeySecret", secret), ("endpoint", endpoint)) if not v
    ]
    if missing:
        raise InvalidInput(f"{path} [{section}]: missing {', '.join(missing)}")
    assert key_id and secret and endpoint
    token = get("ststoken", "securitytoken", "security_token")
    return Credentials(key_id, secret, endpoint, token, source=f"{path} [{section}]")


def make_bucket(credentials: Credentials, bucket: str, *, timeout: float = 30.0) -> Any:
    """An ``oss2.Bucket`` (V1 signatures; STS when a token is set) with CRC64 checks on."""
    import oss2

    endpoint = credentials.endpoint
    if "://" not in endpoint:
        endpoint = "https://" + endpoint
    auth: Any
    if credentials.security_token:
        auth = oss2.StsAuth(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token
        )
    else:
        auth = oss2.Auth(credentials.access_key_id, credentials.access_key_secret)
    log.debug("OSS bucket %s at %s (credentials from %s)", bucket, endpoint, credentials.source)
    return oss2.Bucket(auth, endpoint, bucket, connect_timeout=timeout, enable_crc=True)


_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "SecurityTokenExpired",
    "InvalidSecurityToken",
}


def translate(exc: Exception, what: str) -> ToolkitError:
    """An oss2 or requests error as a one-line toolkit error about ``what``: OSS's own code and
    message kept, with what to check; the request id and raw error behind ``-v``."""
    import oss2

    detail = repr(exc)
    if isinstance(exc, oss2.exceptions.InconsistentError):
        from tfsctl.errors import CheckFailed

        return CheckFailed(
            f"{what}: CRC64 mismatch between client and OSS (request {exc.request_id}): run it again",
            detail=detail,
        )
    if isinstance(exc, oss2.exceptions.NoSuchBucket):
        return NotFound(f"{what}: bucket does not exist (check the bucket name and the endpoint's region)")
    if isinstance(exc, oss2.exceptions.NotFound):
        return NotFound(f"{what}: not found ({exc.code})", detail=detail)
    if isinstance(exc, oss2.exceptions.RequestError):
        return Unavailable(
            f"{what}: cannot reach the OSS endpoint ({type(exc.exception).__name__}): check the endpoint "
            "in the credentials and the network",
            detail=detail,
        )
    if isinstance(exc, oss2.exceptions.OssError):
        message = (exc.message or "").splitlines()[0] if exc.message else ""
        line = f"{what}: OSS {exc.status} {exc.code}: {message}".rstrip(": ")
        # A wrong key or a policy that does not allow the bucket: configuration to change (exit 2).
        if exc.code in _CREDENTIAL_CODES:
            return InvalidInput(
                f"{line}; check the access key ({ENV_ID} or --profile/--config-file)", detail=detail
            )
        if exc.code == "AccessDenied":
            return InvalidInput(
                f"{line}; the key's RAM policy must allow this bucket and prefix", detail=detail
            )
        return ToolkitError(line, detail=detail)
    return ToolkitError(f"{what}: {exc}", detail=detail)


class OssStore:
    """Read-only view of the objects under one prefix (the repository validator's ``Store``).

    ``entries()`` maps keys relative to the prefix to sizes; keys ending in
    ``/`` are directory marker objects.
    """

    def __init__(self, bucket: Any, url: OssUrl) -> None:
        self.bucket = bucket
        self.url = url

    def _full(self, rel: str) -> str:
        return self.url.key(rel) + ("/" if rel.endswith("/") else "")

    def display(self, rel: str = "") -> str:
        return f"{SCHEME}{self.url.bucket}/{self._full(rel)}" if (self.url.prefix or rel) else str(self.url)

    def entries(self) -> dict[str, int]:
        import oss2

        base = self.url.prefix + "/" if self.url.prefix else ""
        found: dict[str, int] = {}
        try:
            for obj in oss2.ObjectIteratorV2(self.bucket, prefix=base):
                rel = obj.key[len(base) :]
                if rel:
                    found[rel] = int(obj.size)
        except oss2.exceptions.OssError as exc:
            raise translate(exc, str(self.url)) from None
        return found

    def read(self, rel: str) -> bytes:
        import oss2

        try:
            return bytes(self.bucket.get_object(self._full(rel)).read())
        except oss2.exceptions.OssError as exc:
            raise translate(exc, self.display(rel)) from None

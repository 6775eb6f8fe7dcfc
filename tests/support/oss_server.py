"""An Alibaba Cloud OSS-protocol endpoint for tests, served on loopback.

``OssServer`` is a small threaded HTTP server speaking the subset of the OSS
REST API that ``tfsctl.models`` drives through oss2, with path-style URLs
(``http://127.0.0.1:<port>/<bucket>/<key>``, which is what oss2 uses for an
IP endpoint) and buckets held in memory.

Covered, as the real service behaves (per the OSS API reference):
- Request authentication with signature V1 (``Authorization: OSS <id>:<sig>``,
  HMAC-SHA1 over verb, Content-MD5, Content-Type, Date, canonicalized
  ``x-oss-*`` headers and the canonicalized resource with its signed
  sub-resources); STS tokens (``x-oss-security-token``) when the server is
  given one; ``Date`` skew over 15 minutes -> ``RequestTimeTooSkewed``; wrong
  key -> ``InvalidAccessKeyId``; wrong signature -> ``SignatureDoesNotMatch``.
- ListObjects (v1, ``marker``) and ListObjectsV2 (``list-type=2``,
  ``continuation-token``, ``start-after``), ``prefix``, ``delimiter``,
  ``max-keys``, ``encoding-type=url``.
- PutObject (``Content-MD5`` check, ``x-oss-forbid-overwrite``), GetObject
  (incl. ``Range``), HeadObject, DeleteObject, CopyObject
  (``x-oss-copy-source``, ``x-oss-forbid-overwrite``).
- InitiateMultipartUpload, UploadPart, UploadPartCopy (with
  ``x-oss-copy-source-range``), CompleteMultipartUpload, ListParts (paged),
  AbortMultipartUpload; ``NoSuchUpload``, ``InvalidPart``, ``InvalidPartOrder``.
- ``x-oss-hash-crc64ecma`` (CRC-64/ECMA-182 as OSS computes it) on every
  write response and on Get/Head, so oss2's client-side CRC checks run;
  ETags as OSS forms them (MD5, and ``<md5 of part md5s>-<n>`` for multipart).
- XML error bodies with ``Code``/``Message``/``RequestId`` and the matching
  HTTP status (404 NoSuchKey/NoSuchBucket, 409 FileAlreadyExists, 403 ...).

Not covered: virtual-hosted-style URLs, signature V2/V4, ACLs and policies,
versioning, storage classes and restore, server-side encryption, object
tagging and metadata beyond Content-Type, append/symlink, batch delete,
ListMultipartUploads, bucket management APIs, part-size minimums (OSS
requires 100 KiB except for the last part; tests use small parts on purpose),
eventual consistency (this store is strongly consistent, as OSS is today),
rate limits and HTTPS.

Test hooks: ``events`` (every request with its operation, key and status, in
order), ``inject(...)`` (fail a request with a 500, return a wrong CRC, or
corrupt stored bytes after acknowledging them) and ``on_request`` callbacks.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import itertools
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import crcmod

_crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)

SIGNED_SUBRESOURCES = frozenset(
    {
        "acl", "uploads", "location", "cors", "logging", "website", "referer", "lifecycle", "delete",
        "append", "tagging", "objectMeta", "uploadId", "partNumber", "security-token", "position", "img",
        "style", "styleName", "replication", "replicationProgress", "replicationLocation", "cname",
        "bucketInfo", "comp", "qos", "live", "status", "vod", "startTime", "endTime", "symlink",
        "x-oss-process", "response-content-type", "response-content-language", "response-expires",
        "response-cache-control", "response-content-disposition", "response-content-encoding",
        "restore", "stat", "versions", "versioning", "versionId", "policy", "continuation-token",
        "callback", "callback-var", "encryption", "objectInfo", "link", "group",
    }
)  # fmt: skip
MAX_SKEW_SECONDS = 15 * 60


def crc64(data: bytes) -> int:
    return int(_crc64(data))


@dataclass
class StoredObject:
    data: bytes
    etag: str
    content_type: str = "application/octet-stream"
    last_modified: float = field(default_factory=time.time)
    object_type: str = "Normal"
    crc: int | None = None  # the CRC reported; defaults to the CRC of ``data``

    @property
    def crc64(self) -> int:
        return crc64(self.data) if self.crc is None else self.crc


@dataclass
class Part:
    number: int
    data: bytes
    etag: str
    last_modified: float = field(default_factory=time.time)


@dataclass
class Upload:
    bucket: str
    key: str
    parts: dict[int, Part] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    seq: int
    method: str
    op: str
    bucket: str
    key: str
    status: int
    part_number: int | None = None


@dataclass
class Fault:
    op: str
    key_suffix: str
    action: str  # "error" | "bad-crc" | "corrupt"
    times: int
    part_number: int | None = None


class OssError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest().upper() + '"'


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


class OssServer:
    """In-memory OSS endpoint on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        access_key_id: str = "test-access-key-id",
        access_key_secret: str = "test-access-key-secret",
        security_token: str | None = None,
        buckets: tuple[str, ...] = ("models",),
    ) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token
        self.buckets: dict[str, dict[str, StoredObject]] = {b: {} for b in buckets}
        self.uploads: dict[str, Upload] = {}
        self.events: list[Event] = []
        self.faults: list[Fault] = []
        self.on_request: list[Callable[[Event], None]] = []
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> OssServer:
        handler = type("Handler", (_Handler,), {"oss": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oss-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OssServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Environment variables tfsctl reads for credentials."""
        env = {
            "OSS_ACCESS_KEY_ID": self.access_key_id,
            "OSS_ACCESS_KEY_SECRET": self.access_key_secret,
            "OSS_ENDPOINT": self.endpoint,
        }
        if self.security_token:
            env["OSS_SECURITY_TOKEN"] = self.security_token
        return env

    # test hooks
    def inject(
        self,
        op: str,
        key_suffix: str = "",
        action: str = "error",
        times: int = 1,
        part_number: int | None = None,
    ) -> None:
        """Fail (``error``) or misbehave (``bad-crc``, ``corrupt``) on the next matching requests."""
        with self.lock:
            self.faults.append(Fault(op, key_suffix, action, times, part_number))

    def _take_fault(self, op: str, key: str, part_number: int | None) -> str | None:
        with self.lock:
            for fault in self.faults:
                if (
                    fault.op == op
                    and key.endswith(fault.key_suffix)
                    and fault.times > 0
                    and (fault.part_number is None or fault.part_number == part_number)
                ):
                    fault.times -= 1
                    return fault.action
        return None

    def keys(self, bucket: str = "models", prefix: str = "") -> list[str]:
        with self.lock:
            return sorted(k for k in self.buckets[bucket] if k.startswith(prefix))

    def ops(self, op: str | None = None, key_suffix: str = "") -> list[Event]:
        with self.lock:
            return [e for e in self.events if (op is None or e.op == op) and e.key.endswith(key_suffix)]

    def _record(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)
            hooks = list(self.on_request)
        for hook in hooks:
            hook(event)

    # authentication
    def check_signature(
        self, method: str, bucket: str, key: str, query: dict[str, str], headers: Any
    ) -> None:
        auth = headers.get("Authorization", "")
        if not auth.startswith("OSS ") or ":" not in auth:
            raise OssError(403, "AccessDenied", "AccessDenied: anonymous access is not allowed")
        key_id, _, signature = auth[4:].rpartition(":")
        if key_id != self.access_key_id:
            raise OssError(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist.")
        date = headers.get("x-oss-date") or headers.get("Date") or ""
        parsed = email.utils.parsedate_to_datetime(date) if date else None
        if parsed is None or abs(parsed.timestamp() - time.time()) > MAX_SKEW_SECONDS:
            raise OssError(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the server's is too large.",
            )
        if self.security_token is not None and headers.get("x-oss-security-token") != self.security_token:
            raise OssError(403, "InvalidSecurityToken", "The security token you provided is invalid.")
        oss_headers = sorted(
            (k.lower(), v.strip()) for k, v in headers.items() if k.lower().startswith("x-oss-")
        )
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in oss_headers)
        sub = sorted((k, v) for k, v in query.items() if k in SIGNED_SUBRESOURCES)
        resource = f"/{bucket}/{key}" if bucket else "/"
        if sub:
            resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
        string_to_sign = "\n".join(
            [
                method,
                headers.get("Content-MD5", ""),
                headers.get("Content-Type", ""),
                date,
                canonical_headers + resource,
            ]
        )
        expected = base64.b64encode(
            hmac.new(self.access_key_secret.encode(), string_to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        if not hmac.compare_digest(expected, signature):
            raise OssError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )

    # operations: each returns (status, headers, body, op)
    def handle(
        self, method: str, bucket: str, key: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes, str]:
        with self.lock:
            if bucket not in self.buckets:
                raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.")
            objects = self.buckets[bucket]
        if not key:
            if method == "GET":
                return self._list(bucket, objects, query)
            raise OssError(
                405, "MethodNotAllowed", f"{method} on a bucket is not supported by this test server"
            )
        if method == "POST" and "uploads" in query:
            upload_id = uuid.uuid4().hex.upper()
            with self.lock:
                self.uploads[upload_id] = Upload(bucket, key)
            xml = (
                f"<InitiateMultipartUploadResult><Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                f"<UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
            )
            return 200, {"Content-Type": "application/xml"}, _xml(xml), "InitiateMultipartUpload"
        if "uploadId" in query:
            return self._multipart(method, bucket, key, query, headers, body)
        if method == "PUT":
            if "x-oss-copy-source" in headers:
                return self._copy(bucket, key, headers)
            return self._put(bucket, key, headers, body)
        if method in ("GET", "HEAD"):
            with self.lock:
                obj = objects.get(key)
            if obj is None:
                raise OssError(404, "NoSuchKey", "The specified key does not exist.")
            data = obj.data
            status = 200
            out = {
                "Content-Type": obj.content_type,
                "ETag": obj.etag,
                "Last-Modified": email.utils.formatdate(obj.last_modified, usegmt=True),
                "x-oss-object-type": obj.object_type,
                "x-oss-hash-crc64ecma": str(obj.crc64),
                "Accept-Ranges": "bytes",
            }
            rng = headers.get("Range")
            if rng and method == "GET" and rng.startswith("bytes="):
                start_s, _, end_s = rng[6:].partition("-")
                start = int(start_s) if start_s else max(len(data) - int(end_s), 0)
                end = min(int(end_s), len(data) - 1) if start_s and end_s else len(data) - 1
                out["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                data, status = data[start : end + 1], 206
            return status, out, data, "GetObject" if method == "GET" else "HeadObject"
        if method == "DELETE":
            with self.lock:
                objects.pop(key, None)
            return 204, {}, b"", "DeleteObject"
        raise OssError(405, "MethodNotAllowed", f"{method} is not supported by this test server")

    def _store(
        self,
        bucket: str,
        key: str,
        data: bytes,
        headers: Any,
        op: str,
        object_type: str = "Normal",
        etag: str | None = None,
    ) -> dict[str, str]:
        objects = self.buckets[bucket]
        action = self._take_fault(op, key, None)
        if action == "error":
            raise OssError(500, "InternalError", "injected failure")
        with self.lock:
            if headers.get("x-oss-forbid-overwrite", "").lower() == "true" and key in objects:
                raise OssError(
                    409,
                    "FileAlreadyExists",
                    "The object you specified already exists and can not be overwritten.",
                )
            received_crc = crc64(data)
            stored = data
            if action == "corrupt" and data:
                stored = bytes([data[0] ^ 0xFF]) + data[1:]
            objects[key] = StoredObject(
                stored,
                etag or _etag(data),
                headers.get("Content-Type") or "application/octet-stream",
                object_type=object_type,
            )
        reported = received_crc + 1 if action == "bad-crc" else received_crc
        return {"ETag": objects[key].etag, "x-oss-hash-crc64ecma": str(reported % (1 << 64))}

    def _put(
        self, bucket: str, key: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes, str]:
        md5 = headers.get("Content-MD5")
        if md5 and base64.b64encode(hashlib.md5(body).digest()).decode() != md5:
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        return 200, self._store(bucket, key, body, headers, "PutObject"), b"", "PutObject"

    def _source(self, headers: Any) -> StoredObject:
        source = urllib.parse.unquote(headers["x-oss-copy-source"])
        src_bucket, _, src_key = source.lstrip("/").partition("/")
        with self.lock:
            obj = self.buckets.get(src_bucket, {}).get(src_key)
        if obj is None:
            raise OssError(404, "NoSuchKey", "The specified copy source does not exist.")
        return obj

    def _copy(self, bucket: str, key: str, headers: Any) -> tuple[int, dict[str, str], bytes, str]:
        src = self._source(headers)
        out = self._store(
            bucket,
            key,
            src.data,
            {**dict(headers.items()), "Content-Type": src.content_type},
            "CopyObject",
            src.object_type,
            src.etag,
        )
        xml = (
            f"<CopyObjectResult><ETag>{escape(out['ETag'])}</ETag>"
            f"<LastModified>{_iso(time.time())}</LastModified></CopyObjectResult>"
        )
        return 200, {**out, "Content-Type": "application/xml"}, _xml(xml), "CopyObject"

    def _multipart(
        self, method: str, bucket: str, key: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes, str]:
        upload_id = query["uploadId"]
        with self.lock:
            upload = self.uploads.get(upload_id)
        if upload is None or (upload.bucket, upload.key) != (bucket, key):
            raise OssError(404, "NoSuchUpload", "The specified upload does not exist.")
        if method == "PUT":
            number = int(query.get("partNumber", "0"))
            if not 1 <= number <= 10000:
                raise OssError(400, "InvalidArgument", "Part number must be an integer between 1 and 10000.")
            op = "UploadPartCopy" if "x-oss-copy-source" in headers else "UploadPart"
            if op == "UploadPartCopy":
                data = self._source(headers).data
                rng = headers.get("x-oss-copy-source-range", "")
                if rng.startswith("bytes="):
                    start_s, _, end_s = rng[6:].partition("-")
                    data = data[int(start_s) : int(end_s) + 1]
            else:
                data = body
            action = self._take_fault(op, key, number)
            if action == "error":
                raise OssError(500, "InternalError", "injected failure")
            stored = bytes([data[0] ^ 0xFF]) + data[1:] if action == "corrupt" and data else data
            part = Part(number, stored, _etag(data))
            with self.lock:
                upload.parts[number] = part
            reported = (crc64(data) + (1 if action == "bad-crc" else 0)) % (1 << 64)
            out = {"ETag": part.etag, "x-oss-hash-crc64ecma": str(reported)}
            if op == "UploadPartCopy":
                xml = (
                    f"<CopyPartResult><LastModified>{_iso(part.last_modified)}</LastModified>"
                    f"<ETag>{escape(part.etag)}</ETag></CopyPartResult>"
                )
                return 200, {**out, "Content-Type": "application/xml"}, _xml(xml), op
            return 200, out, b"", op
        if method == "GET":
            return self._list_parts(upload, upload_id, query)
        if method == "DELETE":
            with self.lock:
                self.uploads.pop(upload_id, None)
            return 204, {}, b"", "AbortMultipartUpload"
        if method == "POST":
            root = ElementTree.fromstring(body)
            wanted = [
                (int(p.findtext("PartNumber", "0")), (p.findtext("ETag") or "").strip())
                for p in root.findall("Part")
            ]
            numbers = [n for n, _ in wanted]
            if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
                raise OssError(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
            with self.lock:
                for number, etag in wanted:
                    part = upload.parts.get(number)
                    if part is None or part.etag.strip('"') != etag.strip('"'):
                        raise OssError(
                            400,
                            "InvalidPart",
                            f"One or more of the specified parts could not be found (part {number}).",
                        )
                data = b"".join(upload.parts[n].data for n in numbers)
                digest = hashlib.md5(
                    b"".join(bytes.fromhex(upload.parts[n].etag.strip('"')) for n in numbers)
                )
                etag = f'"{digest.hexdigest().upper()}-{len(numbers)}"'
                out = self._store(bucket, key, data, headers, "CompleteMultipartUpload", "Multipart", etag)
                del self.uploads[upload_id]
            enc = query.get("encoding-type") == "url"
            shown = urllib.parse.quote(key, safe="") if enc else key
            xml = (
                f"<CompleteMultipartUploadResult>{'<EncodingType>url</EncodingType>' if enc else ''}"
                f"<Location>{self.endpoint}/{escape(bucket)}/{escape(shown)}</Location><Bucket>{escape(bucket)}</Bucket>"
                f"<Key>{escape(shown)}</Key><ETag>{escape(etag)}</ETag></CompleteMultipartUploadResult>"
            )
            return 200, {**out, "Content-Type": "application/xml"}, _xml(xml), "CompleteMultipartUpload"
        raise OssError(405, "MethodNotAllowed", f"{method} with uploadId is not supported")

    def _list_parts(
        self, upload: Upload, upload_id: str, query: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes, str]:
        marker = int(query.get("part-number-marker") or 0)
        max_parts = int(query.get("max-parts") or 1000)
        with self.lock:
            parts = sorted((p for n, p in upload.parts.items() if n > marker), key=lambda p: p.number)
        page, truncated = parts[:max_parts], len(parts) > max_parts
        next_marker = page[-1].number if page else marker
        items = "".join(
            f"<Part><PartNumber>{p.number}</PartNumber><LastModified>{_iso(p.last_modified)}</LastModified>"
            f"<ETag>{escape(p.etag)}</ETag><HashCrc64ecma>{crc64(p.data)}</HashCrc64ecma><Size>{len(p.data)}</Size></Part>"
            for p in page
        )
        xml = (
            f"<ListPartsResult><Bucket>{escape(upload.bucket)}</Bucket><Key>{escape(upload.key)}</Key>"
            f"<UploadId>{upload_id}</UploadId><PartNumberMarker>{marker}</PartNumberMarker>"
            f"<NextPartNumberMarker>{next_marker}</NextPartNumberMarker><MaxParts>{max_parts}</MaxParts>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{items}</ListPartsResult>"
        )
        return 200, {"Content-Type": "application/xml"}, _xml(xml), "ListParts"

    def _list(
        self, bucket: str, objects: dict[str, StoredObject], query: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes, str]:
        v2 = query.get("list-type") == "2"
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        max_keys = min(int(query.get("max-keys") or 100), 1000)
        enc = query.get("encoding-type") == "url"
        after = (
            query.get("continuation-token") or query.get("start-after", "") if v2 else query.get("marker", "")
        )
        with self.lock:
            keys = sorted(k for k in objects if k.startswith(prefix) and k > after)
            snapshot = {k: objects[k] for k in keys}
        entries: list[tuple[str, str]] = []  # (kind, key or common prefix)
        seen_prefixes: set[str] = set()
        for k in keys:
            if delimiter and delimiter in k[len(prefix) :]:
                common = k[: len(prefix) + k[len(prefix) :].index(delimiter) + len(delimiter)]
                if common in seen_prefixes or common <= after:
                    continue
                seen_prefixes.add(common)
                entries.append(("prefix", common))
            else:
                entries.append(("key", k))
            if len(entries) > max_keys:
                break
        truncated = len(entries) > max_keys
        entries = entries[:max_keys]
        last = entries[-1][1] if entries else ""

        def q(text: str) -> str:
            return escape(urllib.parse.quote(text, safe="/") if enc else text)

        contents = "".join(
            f"<Contents><Key>{q(k)}</Key><LastModified>{_iso(snapshot[k].last_modified)}</LastModified>"
            f"<ETag>{escape(snapshot[k].etag)}</ETag><Type>{snapshot[k].object_type}</Type>"
            f"<Size>{len(snapshot[k].data)}</Size><StorageClass>Standard</StorageClass>"
            f"<Owner><ID>tfsctl-test</ID><DisplayName>tfsctl-test</DisplayName></Owner></Contents>"
            for kind, k in entries
            if kind == "key"
        )
        commons = "".join(
            f"<CommonPrefixes><Prefix>{q(p)}</Prefix></CommonPrefixes>"
            for kind, p in entries
            if kind == "prefix"
        )
        head = f"<Name>{escape(bucket)}</Name><Prefix>{q(prefix)}</Prefix><MaxKeys>{max_keys}</MaxKeys>"
        head += f"<Delimiter>{q(delimiter)}</Delimiter>"
        head += "<EncodingType>url</EncodingType>" if enc else ""
        head += f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
        if v2:
            head += f"<KeyCount>{len(entries)}</KeyCount>"
            if truncated:
                head += f"<NextContinuationToken>{q(last)}</NextContinuationToken>"
        else:
            head += f"<Marker>{q(after)}</Marker>"
            if truncated:
                head += f"<NextMarker>{q(last)}</NextMarker>"
        xml = f"<ListBucketResult>{head}{contents}{commons}</ListBucketResult>"
        return 200, {"Content-Type": "application/xml"}, _xml(xml), "ListObjectsV2" if v2 else "ListObjects"


def _xml(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


def _op_name(method: str, key: str, query: dict[str, str], headers: Any) -> str:
    copy = "x-oss-copy-source" in headers
    if not key:
        return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
    if "uploads" in query:
        return "InitiateMultipartUpload"
    if "uploadId" in query:
        multipart = {"GET": "ListParts", "DELETE": "AbortMultipartUpload", "POST": "CompleteMultipartUpload"}
        return (
            ("UploadPartCopy" if copy else "UploadPart") if method == "PUT" else multipart.get(method, method)
        )
    simple = {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    return ("CopyObject" if copy else "PutObject") if method == "PUT" else simple.get(method, method)


class _Handler(BaseHTTPRequestHandler):
    oss: OssServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) < length:  # client went away mid-request: OSS stores nothing
            raise ConnectionAbortedError("request body truncated")
        return data

    def _dispatch(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        bucket, _, key = path.lstrip("/").partition("/")
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        try:
            body = self._body() if self.command in ("PUT", "POST") else b""
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        request_id = uuid.uuid4().hex.upper()[:24]
        op = _op_name(self.command, key, query, self.headers)
        try:
            self.oss.check_signature(self.command, bucket, key, query, self.headers)
            status, headers, payload, op = self.oss.handle(
                self.command, bucket, key, query, self.headers, body
            )
        except OssError as exc:
            status = exc.status
            headers = {"Content-Type": "application/xml"}
            payload = _xml(
                f"<Error><Code>{exc.code}</Code><Message>{escape(exc.message)}</Message>"
                f"<RequestId>{request_id}</RequestId><HostId>127.0.0.1</HostId></Error>"
            )
        part = int(query["partNumber"]) if query.get("partNumber", "").isdigit() else None
        self.send_response(status)
        self.send_header("x-oss-request-id", request_id)
        self.send_header("Server", "AliyunOSS")
        self.send_header("Date", email.utils.formatdate(usegmt=True))
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.oss._record(Event(next(self.oss._seq), self.command, op, bucket, key, status, part))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _dispatch

"""MinIO's `users` container: one MinIO user and policy per workload (stages, Trino, MLflow).

Run with the stages image's Python (botocore signs the admin requests, `cryptography` encrypts
the new secret keys as MinIO's admin API requires), beside MinIO in its Pod, with MinIO's root
credentials, which no other Pod gets. Every pass is idempotent: a canned policy is replaced, a
user's secret key and status are set again, the policy mapped again, so a restart or a `helm
upgrade` (new prefixes, a new key) converges. After the first pass it writes READY_FILE (the
container's readiness probe) and passes again every INTERVAL_SECONDS; with INTERVAL_SECONDS=0
it exits after one pass.

Environment: MINIO_URL, MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, MINIO_REGION, S3_BUCKET,
BRONZE_PREFIX, REPORTS_PREFIX, WAREHOUSE_PREFIX, BRONZE_METASTORE_PREFIX, MLFLOW_PREFIX, and
<WORKLOAD>_ACCESS_KEY / <WORKLOAD>_SECRET_KEY for STAGES, TRINO and MLFLOW. No secret is taken
from the command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

ADMIN = "/minio/admin/v3"
OBJECT_RW = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
OBJECT_RO = ["s3:GetObject"]


def env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"minio_users: environment variable {name} is empty")
    return value


def prefix(name: str) -> str:
    return env(name).strip("/")


def encrypt(secret: str, payload: bytes) -> bytes:
    """madmin's EncryptData: Argon2id key (t=1, 64 MiB, 4 lanes) from the root secret key,
    then one sio-go AES-256-GCM stream: salt(32) | algorithm 0x00 | nonce(8) | sealed payload.
    A payload under 16 KiB is one final fragment: nonce || little-endian 1, its associated data
    0x80 || the GCM tag of nothing under nonce || 0."""
    salt, nonce = os.urandom(32), os.urandom(8)
    key = Argon2id(salt=salt, length=32, iterations=1, lanes=4, memory_cost=65536).derive(
        secret.encode()
    )
    aead = AESGCM(key)
    header_tag = aead.encrypt(nonce + bytes(4), b"", None)
    sealed = aead.encrypt(nonce + (1).to_bytes(4, "little"), payload, b"\x80" + header_tag)
    if len(payload) > 1 << 14:
        raise ValueError("minio_users: admin payload over 16 KiB")
    return salt + b"\x00" + nonce + sealed


class Admin:
    """The few admin calls this needs, signed with SigV4 as the root user."""

    def __init__(self, url: str, user: str, secret: str, region: str) -> None:
        self.url, self.secret = url.rstrip("/"), secret
        self.signer = SigV4Auth(Credentials(user, secret), "s3", region)

    def call(self, method: str, path: str, query: dict[str, str], body: bytes = b"") -> bytes:
        url = f"{self.url}{ADMIN}{path}?{urllib.parse.urlencode(sorted(query.items()))}"
        request = AWSRequest(
            method=method,
            url=url,
            data=body,
            headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()},
        )
        self.signer.add_auth(request)
        sent = urllib.request.Request(
            url, data=body if body else None, headers=dict(request.headers), method=method
        )
        try:
            with urllib.request.urlopen(sent, timeout=30) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise RuntimeError(
                f"minio_users: {method} {path} {query}: {exc.code} {detail}"
            ) from exc

    def put_policy(self, name: str, policy: dict[str, Any]) -> None:
        self.call("PUT", "/add-canned-policy", {"name": name}, json.dumps(policy).encode())

    def put_user(self, access_key: str, secret_key: str) -> None:
        body = json.dumps({"secretKey": secret_key, "status": "enabled"}).encode()
        self.call("PUT", "/add-user", {"accessKey": access_key}, encrypt(self.secret, body))

    def map_policy(self, access_key: str, policy: str) -> None:
        query = {"policyName": policy, "userOrGroup": access_key, "isGroup": "false"}
        self.call("PUT", "/set-user-or-group-policy", query)


def policies() -> dict[str, dict[str, Any]]:
    """Each workload's statements: list the bucket under its own prefixes only, then objects
    under them.

    Listing objects is scoped with an ``s3:prefix`` condition: a workload's key cannot read
    another's object names (MLflow's key listing bronze/ is refused). StringLike never matches
    an absent key, so a listing without a prefix and HeadBucket (authorised as s3:ListBucket,
    with no prefix) are refused too; no client of the product makes either: Trino's native S3
    file system lists ``<location>/``, MLflow's S3 artifact store ``<artifacts root>/...``,
    the stages ``<bronze>/`` and verify-infra lists its bronze prefix instead of HeadBucket.
    GetBucketLocation stays unconditioned (it reveals only the region; SDKs without a
    configured region ask it). ListMultipartUploads is not granted: MinIO refuses an
    ``s3:prefix`` condition on it (XMinioMalformedIAMPolicy), unscoped it would list the keys
    being uploaded anywhere in the bucket, and no client needs it (multipart uploads and
    aborts name their upload id)."""
    bucket = env("S3_BUCKET")
    bronze, reports = prefix("BRONZE_PREFIX"), prefix("REPORTS_PREFIX")
    warehouse, metastore = prefix("WAREHOUSE_PREFIX"), prefix("BRONZE_METASTORE_PREFIX")
    mlflow = prefix("MLFLOW_PREFIX")

    def doc(read_write: list[str], read_only: list[str]) -> dict[str, Any]:
        # Clients send a folder's prefix as "p/" (or "p/sub/..."); "p" alone is allowed too.
        listable = [form for p in read_write + read_only for form in (p, f"{p}/", f"{p}/*")]
        statements: list[dict[str, Any]] = [
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": listable}},
            },
        ]
        for actions, prefixes in ((OBJECT_RW, read_write), (OBJECT_RO, read_only)):
            if prefixes:
                statements.append(
                    {
                        "Effect": "Allow",
                        "Action": actions,
                        "Resource": [f"arn:aws:s3:::{bucket}/{p}/*" for p in prefixes],
                    }
                )
        return {"Version": "2012-10-17", "Statement": statements}

    return {
        "stages": doc([bronze, reports], []),
        "trino": doc([warehouse, metastore], [bronze]),
        "mlflow": doc([mlflow], []),
    }


def provision(admin: Admin) -> None:
    for workload, policy in policies().items():
        name = f"smepulse-{workload}"
        access_key = env(f"{workload.upper()}_ACCESS_KEY")
        admin.put_policy(name, policy)
        admin.put_user(access_key, env(f"{workload.upper()}_SECRET_KEY"))
        admin.map_policy(access_key, name)
        print(f"user {access_key}: policy {name}", flush=True)


def main() -> int:
    admin = Admin(
        env("MINIO_URL"), env("MINIO_ROOT_USER"), env("MINIO_ROOT_PASSWORD"), env("MINIO_REGION")
    )
    interval = int(os.environ.get("INTERVAL_SECONDS", "600"))
    ready_file = os.environ.get("READY_FILE", "")
    deadline = time.monotonic() + float(os.environ.get("FIRST_PASS_TIMEOUT_SECONDS", "600"))
    while True:
        try:
            provision(admin)
        except (OSError, RuntimeError) as exc:
            # MinIO not up yet (connection refused, 503) or a refused call: retry, and give up
            # only on the first pass past its deadline (the container then restarts).
            if ready_file and os.path.exists(ready_file):
                print(f"{exc}; next pass in {interval}s", file=sys.stderr, flush=True)
            elif time.monotonic() > deadline:
                print(exc, file=sys.stderr, flush=True)
                return 1
            else:
                time.sleep(2)
                continue
        if ready_file:
            with open(ready_file, "w") as marker:
                marker.write("ok\n")
        if interval <= 0:
            return 0
        time.sleep(interval)


if __name__ == "__main__":
    sys.exit(main())

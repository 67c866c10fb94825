# Create the SME Pulse buckets as folders of MinIO's drive, before MinIO starts (the init
# container of the MinIO StatefulSet). A single-drive MinIO serves every top-level folder of
# its drive as a bucket, so no S3 call, credentials or hook Job are needed, and `helm install
# --wait` only waits for MinIO's own readiness. Existing folders and their objects are kept.
# Environment: MINIO_DRIVE (the mounted drive), S3_BUCKETS (comma-separated names).
# Exit code 1, naming the bucket, on a name S3 refuses or a drive that cannot be written.
import os
import re
import sys
from pathlib import Path

# S3's bucket naming rules: 3-63 characters, lower-case letters, digits, dots and hyphens,
# starting and ending with a letter or digit, not shaped like an IP address.
NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")

drive = Path(os.environ["MINIO_DRIVE"])
failed = False
for bucket in [b.strip() for b in os.environ["S3_BUCKETS"].split(",") if b.strip()]:
    if not NAME.match(bucket) or IP.match(bucket) or ".." in bucket:
        print(f"bucket {bucket}: not a valid S3 bucket name (3-63 of a-z 0-9 . -)", file=sys.stderr)
        failed = True
        continue
    folder = drive / bucket
    if folder.is_dir():
        print(f"bucket {bucket}: exists")
        continue
    try:
        folder.mkdir(mode=0o775)
    except OSError as exc:
        print(f"bucket {bucket}: cannot create {folder}: {exc.strerror}", file=sys.stderr)
        failed = True
        continue
    print(f"bucket {bucket}: created")
sys.exit(1 if failed else 0)

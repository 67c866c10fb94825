# Create the SME Pulse buckets in MinIO (run by the chart's post-install/post-upgrade hook).
# Environment: S3_ENDPOINT_URL, S3_REGION, S3_BUCKETS (comma-separated), AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY. Waits up to five minutes for MinIO to answer; exit code 1 on failure
# (at once when the credentials are refused).
import os
import sys
import time

import boto3
from botocore.exceptions import BotoCoreError, ClientError

endpoint = os.environ["S3_ENDPOINT_URL"]
client = boto3.client("s3", endpoint_url=endpoint, region_name=os.environ.get("S3_REGION"))
deadline = time.monotonic() + 300
for bucket in [b for b in os.environ["S3_BUCKETS"].split(",") if b]:
    while True:
        try:
            client.head_bucket(Bucket=bucket)
            print(f"bucket {bucket}: exists")
            break
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                # Waiting does not fix credentials: fail at once, saying so.
                sys.exit(f"bucket {bucket}: {endpoint} refused the credentials ({code})")
            if code not in ("404", "NoSuchBucket"):
                error = str(exc)
            else:
                client.create_bucket(Bucket=bucket)
                print(f"bucket {bucket}: created")
                break
        except BotoCoreError as exc:
            error = str(exc)
        if time.monotonic() > deadline:
            sys.exit(f"bucket {bucket}: {endpoint} did not answer in time: {error}")
        print(f"waiting for {endpoint}: {error}")
        time.sleep(5)

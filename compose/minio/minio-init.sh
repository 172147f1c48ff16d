#!/bin/sh
# One-shot (compose service `minio-init`, image minio/mc): creates the bucket S3_BUCKET and
# aisha's own access key S3_ACCESS_KEY_ID, allowed that bucket only. Safe to run again: the
# bucket stays, the key's secret and policy are set to what .env says.
set -eu
say() { echo "[minio-init] $*"; }

export MC_CONFIG_DIR=/tmp/.mc
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$S3_BUCKET"

cat >/tmp/aisha-app-policy.json <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow",
     "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
     "Resource": ["arn:aws:s3:::$S3_BUCKET"]},
    {"Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::$S3_BUCKET/*"]}
  ]
}
JSON
mc admin policy create local aisha-app /tmp/aisha-app-policy.json >/dev/null
mc admin user add local "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY" >/dev/null
# Fails when the policy is attached already; what counts is the check after it.
mc admin policy attach local aisha-app --user "$S3_ACCESS_KEY_ID" >/dev/null 2>&1 || true
mc admin user info local "$S3_ACCESS_KEY_ID" | grep -q aisha-app \
    || { say "policy aisha-app is not attached to $S3_ACCESS_KEY_ID"; exit 1; }
say "bucket $S3_BUCKET and key $S3_ACCESS_KEY_ID ready"

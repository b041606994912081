"""The one boto3 client of the lake's gateway (Ceph RGW), for the platform's own S3 calls.

Path-style addressing (RGW serves no wildcard DNS) and RGW's checksum rules; the keys of the
settings' principal (a domain's own, else the platform's) unless others are given. pyiceberg's file IO has its own client (pyarrow's), configured by
``MeshSettings.catalog_properties``.
"""

from __future__ import annotations

from typing import Any

from mesh_assets.settings import MeshSettings

# boto3's S3 client class is generated at run time: no type to name here
S3Client = Any


def s3_client(settings: MeshSettings, keys: tuple[str, str] | None = None) -> S3Client:
    """A boto3 client of the lake's gateway with ``keys`` (default: ``settings.s3_credentials()``)."""
    import boto3
    from botocore.config import Config

    access, secret = keys or settings.s3_credentials()
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def ensure_bucket(client: S3Client, bucket: str) -> bool:
    """Create ``bucket`` unless it exists; whether it was created."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    client.create_bucket(Bucket=bucket)
    return True

"""The one boto3 client of the lake's gateway (Ceph RGW), for the platform's own S3 calls.

Path-style addressing (RGW serves no wildcard DNS) and RGW's checksum rules; the platform's keys
unless a principal's are given. pyiceberg's file IO has its own client (pyarrow's), configured by
``MeshSettings.catalog_properties``.
"""

from __future__ import annotations

from typing import Any

from mesh_assets.settings import MeshSettings

# boto3's S3 client class is generated at run time: no type to name here
S3Client = Any


def s3_client(settings: MeshSettings, keys: tuple[str, str] | None = None) -> S3Client:
    """A boto3 client of the lake's gateway with ``keys`` (default: the platform's)."""
    import boto3
    from botocore.config import Config

    access, secret = keys or (settings.secret("s3_access_key"), settings.secret("s3_secret_key"))
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

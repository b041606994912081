"""Small probes for the deploy/local scripts (run with the project's venv Python).

Reads MESH_* variables and the secrets from the environment that lib.sh prepares; never prints a
secret. Sub-commands:

  rss PID...            resident memory in MB of the processes and all their descendants
  ceph-pgs-clean        read `ceph status -f json` on stdin; exit 0 when every PG is active+clean
  ceph-osd-up ID        read `ceph osd dump -f json` on stdin; exit 0 when osd.ID is up
  s3-ensure-bucket      create $MESH_S3_BUCKET if missing (exit 3: credentials rejected)
  s3-check              exit 0 when the bucket exists and the credentials work
  trino-check           exit 0 when Trino answers SELECT 1 and SHOW SCHEMAS FROM $MESH_TRINO_CATALOG
"""

from __future__ import annotations

import json
import os
import sys

BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"}


def _err(msg: str) -> None:
    print(f"lakectl: {msg}", file=sys.stderr)


def rss(pids: list[str]) -> int:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    seen: set[int] = set()
    todo = [int(p) for p in pids if p.isdigit()]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    total_kb = 0
    for pid in seen:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
        except OSError:
            pass
    print(f"{total_kb / 1024:.0f}")
    return 0


def ceph_pgs_clean() -> int:
    status = json.load(sys.stdin)
    pgmap = status.get("pgmap", {})
    total = pgmap.get("num_pgs", 0)
    states = {s["state_name"]: s["count"] for s in pgmap.get("pgs_by_state", [])}
    print(f"{states.get('active+clean', 0)}/{total} PGs active+clean {states}")
    return 0 if total > 0 and states.get("active+clean", 0) == total else 1


def ceph_osd_up(osd_id: str) -> int:
    dump = json.load(sys.stdin)
    for osd in dump.get("osds", []):
        if str(osd.get("osd")) == osd_id:
            return 0 if osd.get("up") == 1 else 1
    return 1


def _s3():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=f"http://{os.environ['MESH_HOST']}:{os.environ['MESH_PORT_S3']}",
        aws_access_key_id=os.environ["MESH_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["MESH_S3_SECRET_KEY"],
        region_name=os.environ.get("MESH_S3_REGION", "us-east-1"),
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2},
            connect_timeout=5,
            read_timeout=30,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__))


def s3_check() -> int:
    from botocore.exceptions import ClientError

    bucket = os.environ["MESH_S3_BUCKET"]
    try:
        _s3().head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = _code(exc)
        _err(f"head_bucket {bucket}: {code}")
        return 3 if code in BAD_CREDENTIALS else 1
    except Exception as exc:
        _err(f"head_bucket {bucket}: {type(exc).__name__}: {exc}")
        return 1
    return 0


def s3_ensure_bucket() -> int:
    from botocore.exceptions import ClientError

    bucket = os.environ["MESH_S3_BUCKET"]
    client = _s3()
    try:
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    except ClientError as exc:
        code = _code(exc)
        _err(f"list_buckets: {code}")
        return 3 if code in BAD_CREDENTIALS else 1
    if bucket not in names:
        try:
            client.create_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                _err(f"create_bucket {bucket}: {_code(exc)}")
                return 1
        print(f"created bucket {bucket}")
    return s3_check()


def trino_check() -> int:
    import trino

    catalog = os.environ.get("MESH_TRINO_CATALOG", "iceberg")
    conn = trino.dbapi.connect(
        host=os.environ["MESH_HOST"],
        port=int(os.environ["MESH_PORT_TRINO"]),
        user="mesh-healthcheck",
        http_scheme="http",
        request_timeout=30,
    )
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        if cur.fetchall() != [[1]]:
            _err("SELECT 1 returned an unexpected result")
            return 1
        cur.execute(f'SHOW SCHEMAS FROM "{catalog}"')
        schemas = [row[0] for row in cur.fetchall()]
    except Exception as exc:
        _err(f"{type(exc).__name__}: {str(exc)[:300]}")
        return 1
    finally:
        conn.close()
    print(f"SHOW SCHEMAS FROM {catalog}: {len(schemas)} schemas")
    return 0


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "rss":
        return rss(args)
    if cmd == "ceph-pgs-clean":
        return ceph_pgs_clean()
    if cmd == "ceph-osd-up":
        return ceph_osd_up(args[0])
    if cmd == "s3-ensure-bucket":
        return s3_ensure_bucket()
    if cmd == "s3-check":
        return s3_check()
    if cmd == "trino-check":
        return trino_check()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The sandbox names a REST request's AWS operation as moto routes it: by method, path and query.

Faults and the unimplemented-operation answer are keyed by operation name, so a REST call
must be named from its path without its query string (as moto's own server routes it),
while the query still tells sub-resources apart (S3's ``?versioning``).
"""

from __future__ import annotations

from typing import Any

import pytest

from deployfw.sandbox.aws.protocol import identify


def _environ(service: str, method: str, path: str, query: str = "") -> dict[str, Any]:
    scope = f"AKIDEXAMPLE/20250101/us-east-1/{service}/aws4_request"
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "HTTP_HOST": "127.0.0.1:5000",
        "wsgi.url_scheme": "http",
        "CONTENT_TYPE": "application/json" if service != "s3" else "",
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0",
    }


@pytest.mark.parametrize(
    ("service", "method", "path", "query", "operation"),
    [
        ("s3", "PUT", "/bucket", "", "CreateBucket"),
        ("s3", "PUT", "/bucket", "versioning", "PutBucketVersioning"),
        ("s3", "PUT", "/bucket/dir/key.zip", "", "PutObject"),
        ("s3", "HEAD", "/bucket/key.zip", "", "HeadObject"),
        ("s3", "HEAD", "/bucket", "", "HeadBucket"),
        ("s3", "GET", "/bucket", "list-type=2&prefix=a", "ListObjectsV2"),
        ("lambda", "GET", "/2015-03-31/functions/f", "", "GetFunction"),
        # The query is not part of the path: a listing with parameters is not a GetFunction of "?MaxItems=5".
        ("lambda", "GET", "/2015-03-31/functions/", "MaxItems=5", "ListFunctions"),
    ],
)
def test_rest_operations_are_named_from_method_path_and_query(
    service: str, method: str, path: str, query: str, operation: str
) -> None:
    call = identify(_environ(service, method, path, query), b"")
    assert (call.service, call.region, call.operation) == (service, "us-east-1", operation)

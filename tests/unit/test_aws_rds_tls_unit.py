"""RDS connections verify the server certificate when the CA bundle is configured
(ops.database.ssl_root_cert): verify-full on the endpoint, verify-ca through a
tunnel. Against the real TLS PostgreSQL (its self-signed certificate plays the
RDS CA) and moto for the instance and the secret."""

from __future__ import annotations

import pytest
from support.aws import aws_env

from spywatcher_ops.core.errors import BadInput


def test_a_missing_bundle_is_bad_input(staging_aws, ops_config, tmp_path):
    ops_config.ops.database.ssl_root_cert = str(tmp_path / "nope.pem")
    with pytest.raises(
        BadInput, match=r"ops.database.ssl_root_cert .*nope.pem: no such file; use the path of the RDS CA"
    ):
        aws_env(ops_config).database.connection()

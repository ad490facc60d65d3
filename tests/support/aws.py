"""AWS test support (fixtures registered from tests/conftest.py).

- `staging_aws`: in-process moto (`mock_aws`) holding a staging environment
  like the real one: VPC, two subnets, a DB subnet group, security groups, a
  parameter group, KMS keys (home region and us-west-2), the credentials
  secret, the RDS PostgreSQL 15 instance (Multi-AZ, encrypted, monitoring on)
  and the DynamoDB lock table.
- `moto_server`: a moto server on 127.0.0.1 (session), reached through
  AWS_ENDPOINT_URL (tests/e2e/conftest.py's `moto_staging` puts the staging
  environment in it for the real `inv` command).
- `aws_env`, `build_staging`, `stub_iam_simulation`: helpers tests import.
The real TLS PostgreSQL that stands in for RDS is in support/pg_tls.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.clock import FakeClock

REGION = "us-east-1"
COPY_REGION = "us-west-2"
STAGING_DB = "spywatcher-staging-db"
SECRET = "spywatcher-staging-db-credentials"
LOCK_TABLE = "spywatcher-ops-locks"
MONITORING_ROLE = "arn:aws:iam::123456789012:role/rds-monitoring"
APP_USER = "spywatcher"
APP_PASSWORD = "app-Secret-42"


_LOADER: Any = None


def _session() -> Any:
    """A boto3 session sharing one service-model loader across tests: moto resets
    boto3's default session per test, and re-reading the models costs ~0.3 s each time."""
    global _LOADER
    import boto3
    import botocore.loaders
    import botocore.session

    if _LOADER is None:
        _LOADER = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core, region_name=REGION)


def build_staging(*, password: str = APP_PASSWORD, dbname: str = "spywatcher") -> dict[str, Any]:
    """Create the staging resources with plain boto3 (moto in-process or server)."""
    boto3 = _session()
    ec2 = boto3.client("ec2", region_name=REGION)
    rds = boto3.client("rds", region_name=REGION)
    kms = boto3.client("kms", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in ((1, "a"), (2, "b"))
    ]
    groups = [
        ec2.create_security_group(GroupName=f"spywatcher-staging-{n}", Description=n, VpcId=vpc)["GroupId"]
        for n in ("db", "db-admin")
    ]
    rds.create_db_subnet_group(
        DBSubnetGroupName="spywatcher-staging-db-subnets",
        DBSubnetGroupDescription="database subnets",
        SubnetIds=subnets,
    )
    rds.create_db_parameter_group(
        DBParameterGroupName="spywatcher-staging-pg15",
        DBParameterGroupFamily="postgres15",
        Description="staging",
    )
    key = kms.create_key(Description="staging rds")["KeyMetadata"]["Arn"]
    west_key = boto3.client("kms", region_name=COPY_REGION).create_key(Description="dr copies")[
        "KeyMetadata"
    ]["Arn"]
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=SECRET, SecretString=json.dumps({"username": APP_USER, "password": password, "dbname": dbname})
    )["ARN"]
    rds.create_db_instance(
        DBInstanceIdentifier=STAGING_DB,
        Engine="postgres",
        EngineVersion="15.3",
        DBInstanceClass="db.t3.medium",
        AllocatedStorage=50,
        StorageType="gp3",
        MultiAZ=True,
        StorageEncrypted=True,
        KmsKeyId=key,
        DBSubnetGroupName="spywatcher-staging-db-subnets",
        VpcSecurityGroupIds=groups,
        DBParameterGroupName="spywatcher-staging-pg15",
        BackupRetentionPeriod=7,
        MasterUsername="postgres",
        MasterUserPassword="master-Secret-1",
        DBName=dbname,
        DeletionProtection=True,
        CopyTagsToSnapshot=True,
        Tags=[
            {"Key": "Environment", "Value": "staging"},
            {"Key": "Project", "Value": "spywatcher"},
            {"Key": "ManagedBy", "Value": "terraform"},
            {"Key": "CostCenter", "Value": "engineering"},
        ],
    )
    # moto drops monitoring settings given at creation; set them the way terraform's modify would.
    rds.modify_db_instance(
        DBInstanceIdentifier=STAGING_DB,
        MonitoringInterval=60,
        MonitoringRoleArn=MONITORING_ROLE,
        ApplyImmediately=True,
    )
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=LOCK_TABLE,
        KeySchema=[{"AttributeName": "lock_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "lock_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return {
        "vpc": vpc,
        "subnets": subnets,
        "security_groups": groups,
        "kms_key": key,
        "west_key": west_key,
        "secret": secret,
        "instance": STAGING_DB,
        "subnet_group": "spywatcher-staging-db-subnets",
        "parameter_group": "spywatcher-staging-pg15",
    }


@pytest.fixture
def staging_aws(ops_config: Any) -> Any:
    """In-process moto with the staging environment; kms_keys[us-west-2] configured."""
    from moto import mock_aws

    with mock_aws():
        info = build_staging()
        ops_config.ops.environments.staging.kms_keys = {COPY_REGION: info["west_key"]}
        yield info


def aws_env(ops_config: Any, clock: Any = None, name: str = "staging") -> Any:
    """An Environment for `name` built from the test config (and a FakeClock by default)."""
    from spywatcher_ops.backends.table import build
    from spywatcher_ops.core import config as cfg

    return build(cfg.load(ops_config), name, clock=clock or FakeClock())


@pytest.fixture(scope="session")
def moto_server() -> Any:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns test output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


CALLER_ARN = "arn:aws:sts::123456789012:user/moto"  # what moto's STS says the caller is


def stub_iam_simulation(
    env: Any, scenario: Any, *, deny: tuple[str, ...] = (), caller: str = CALLER_ARN
) -> Any:
    """botocore Stubber for the drills' IAM policy simulation (moto lacks it): one call per
    service, with the resource ARNs the toolkit must send; `deny` answers implicitDeny."""
    from botocore.stub import Stubber

    from spywatcher_ops.backends.aws.iam import policy_source
    from spywatcher_ops.drills import aws as drill_aws

    actions = drill_aws.required_actions(env, scenario)
    resources = drill_aws.resource_arns(env, caller)
    stub = Stubber(env.parts.clients.client("iam"))
    for service, acts in drill_aws._by_service(actions):
        expected: dict[str, Any] = {"PolicySourceArn": policy_source(caller), "ActionNames": acts}
        if service in resources:
            expected["ResourceArns"] = [resources[service]]
        stub.add_response(
            "simulate_principal_policy",
            {
                "EvaluationResults": [
                    {"EvalActionName": a, "EvalDecision": "implicitDeny" if a in deny else "allowed"}
                    for a in acts
                ]
            },
            expected,
        )
    stub.activate()
    return stub

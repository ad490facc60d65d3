"""Plan summaries, the destroy guard, state diffs, and reading terraform's own output:
pure functions on plain data (the outputs below were copied from terraform 1.11)."""

from __future__ import annotations

import pytest

from spywatcher_ops.backends.terraform import (
    applied_resources,
    error_summaries,
    failing_addresses,
    hcl_value,
    lock_info,
)
from spywatcher_ops.core.errors import BadInput
from spywatcher_ops.infra.state import state_diff
from spywatcher_ops.infra.summary import action_of, check_allow, is_stateful, summarize


def rc(address: str, rtype: str, name: str, *actions: str, mode: str = "managed") -> dict:
    return {
        "address": address,
        "type": rtype,
        "name": name,
        "mode": mode,
        "change": {"actions": list(actions)},
    }


def test_actions_map_to_add_change_replace_destroy():
    assert action_of(["create"]) == "add"
    assert action_of(["update"]) == "change"
    assert action_of(["delete", "create"]) == "replace"
    assert action_of(["create", "delete"]) == "replace"
    assert action_of(["delete"]) == "destroy"
    assert action_of(["no-op"]) is None and action_of(["read"]) is None


def test_summary_counts_per_type_and_blocks_stateful_destroys():
    plan = {
        "resource_changes": [
            rc("aws_db_instance.main", "aws_db_instance", "main", "delete", "create"),
            rc(
                "module.cache.aws_elasticache_replication_group.this[0]",
                "aws_elasticache_replication_group",
                "this",
                "delete",
            ),
            rc("aws_security_group.db", "aws_security_group", "db", "update"),
            rc("aws_security_group.web", "aws_security_group", "web", "create"),
            rc("aws_iam_role.old", "aws_iam_role", "old", "delete"),
            rc("aws_s3_bucket.logs", "aws_s3_bucket", "logs", "no-op"),
            rc("data.aws_ami.eks", "aws_ami", "eks", "read", mode="data"),
        ],
        "resource_drift": [rc("aws_security_group.db", "aws_security_group", "db", "update")],
    }
    stateful = ["aws_db_instance", "aws_elasticache_replication_group", "aws_s3_bucket"]
    s = summarize(plan, stateful, ["aws_db_instance.main"])
    assert s.counts() == {
        "aws_db_instance": {"add": 0, "change": 0, "replace": 1, "destroy": 0},
        "aws_elasticache_replication_group": {"add": 0, "change": 0, "replace": 0, "destroy": 1},
        "aws_iam_role": {"add": 0, "change": 0, "replace": 0, "destroy": 1},
        "aws_security_group": {"add": 1, "change": 1, "replace": 0, "destroy": 0},
    }
    assert s.totals() == {"add": 1, "change": 1, "replace": 1, "destroy": 2}
    assert [c.address for c in s.dangerous] == [
        "aws_db_instance.main",
        "module.cache.aws_elasticache_replication_group.this[0]",
    ]
    # allowed by its TYPE.NAME even inside a module, with an index
    assert [c.address for c in s.blocked] == ["module.cache.aws_elasticache_replication_group.this[0]"]
    assert (
        summarize(plan, stateful, ["aws_elasticache_replication_group.this", "aws_db_instance.main"]).blocked
        == []
    )
    assert [c.address for c in s.drift] == ["aws_security_group.db"]


def test_stateful_matches_type_or_address():
    assert is_stateful("terraform_data", "terraform_data.database", ["terraform_data.database"])
    assert not is_stateful("terraform_data", "terraform_data.web", ["terraform_data.database"])
    assert is_stateful("aws_kms_key", "module.k.aws_kms_key.main", ["aws_kms_key"])


@pytest.mark.parametrize(
    "bad", ["main", "aws db.main", "aws_db_instance.", ".main", "aws_db_instance.main;rm"]
)
def test_allow_destroy_must_be_an_address(bad):
    with pytest.raises(BadInput, match="not a resource address"):
        check_allow([bad])


def test_state_diff_lines():
    def state(**inputs):
        return {
            "resources": [
                {
                    "mode": "managed",
                    "type": "terraform_data",
                    "name": n,
                    "instances": [{"attributes": {"input": v}}],
                }
                for n, v in inputs.items()
            ],
            "outputs": {},
        }

    assert state_diff(state(a="1", b="2"), state(a="1", c="3", b="9")) == [
        "+ terraform_data.c",
        "~ terraform_data.b",
    ]
    assert state_diff(state(a="1", b="2"), state(a="1")) == ["- terraform_data.b"]
    assert state_diff(state(a="1"), state(a="1")) == []


def test_hcl_values_for_the_backend_config():
    assert hcl_value('x"y') == '"x\\"y"'
    assert hcl_value(True) == "true"
    assert (
        hcl_value({"s3": "http://127.0.0.1:1", "dynamodb": "http://127.0.0.1:1"})
        == '{ s3 = "http://127.0.0.1:1", dynamodb = "http://127.0.0.1:1" }'
    )
    with pytest.raises(BadInput):
        hcl_value(object())


LOCKED = """Error: Error acquiring the state lock

Error message: operation error DynamoDB: PutItem, https response error
ConditionalCheckFailedException: The conditional request failed
Lock Info:
  ID:        67cae1e4-5ef1-984f-fa15-d8f8415bda09
  Path:      spywatcher-tfstate/staging/terraform.tfstate
  Operation: OperationTypeApply
  Who:       root@vm
  Version:   1.11.4
  Created:   2026-11-29 10:06:20.99404756 +0000 UTC
  Info:

Terraform acquires a state lock to protect the state from being written
"""

FAILED_APPLY = """terraform_data.web: Creating...
terraform_data.web: Creation complete after 0s [id=220d6bbf]
terraform_data.old: Destroying... [id=1]
terraform_data.old: Destruction complete after 0s
terraform_data.worker: Provisioning with 'local-exec'...

Error: local-exec provisioner error

  with terraform_data.worker,
  on main.tf line 25, in resource "terraform_data" "worker":
  25:   provisioner "local-exec" {

Error running command 'exit 3': exit status 3. Output: worker boot failed
"""


def test_reading_terraform_output():
    info = lock_info(LOCKED)
    assert info is not None
    assert info["Who"] == "root@vm" and info["Created"].startswith("2026-11-29 10:06:20")
    assert info["ID"] == "67cae1e4-5ef1-984f-fa15-d8f8415bda09"
    assert lock_info(FAILED_APPLY) is None
    assert applied_resources(FAILED_APPLY) == ["terraform_data.web: created", "terraform_data.old: destroyed"]
    assert failing_addresses(FAILED_APPLY) == ["terraform_data.worker"]
    assert error_summaries(FAILED_APPLY) == [
        "local-exec provisioner error: Error running command 'exit 3': exit status 3. Output: worker boot failed"
    ]


PLAN_JSON = [
    {"@level": "info", "@message": "Terraform 1.11.4", "terraform": "1.11.4", "type": "version", "ui": "1.2"},
    {
        "@level": "info",
        "type": "planned_change",
        "change": {
            "action": "update",
            "resource": {
                "addr": "terraform_data.database",
                "module": "",
                "resource_type": "terraform_data",
                "resource_name": "database",
                "resource_key": None,
            },
        },
    },
    {
        "@level": "info",
        "type": "planned_change",
        "change": {
            "action": "replace",
            "resource": {
                "addr": "module.db.aws_db_instance.main",
                "module": "module.db",
                "resource_type": "aws_db_instance",
                "resource_name": "main",
                "resource_key": None,
            },
        },
    },
    {
        "@level": "info",
        "type": "resource_drift",
        "change": {
            "action": "update",
            "resource": {
                "addr": "aws_security_group.db",
                "module": "",
                "resource_type": "aws_security_group",
                "resource_name": "db",
                "resource_key": None,
            },
        },
    },
    {
        "@level": "error",
        "type": "diagnostic",
        "diagnostic": {
            "severity": "error",
            "summary": "Error acquiring the state lock",
            "detail": "Lock Info:\n  ID:        abc\n  Who:       bob@ci\n  Created:   2026-11-29 09:00:00 +0000 UTC\n",
        },
    },
]


def test_plan_json_messages_read_like_show_json():
    from spywatcher_ops.backends.terraform import diagnostics_text, planned_changes

    planned = planned_changes(PLAN_JSON)
    s = summarize(planned, ["aws_db_instance"], [])
    assert [(c.address, c.action) for c in s.changes] == [
        ("terraform_data.database", "change"),
        ("module.db.aws_db_instance.main", "replace"),
    ]
    assert [c.address for c in s.blocked] == ["module.db.aws_db_instance.main"]
    assert [c.address for c in s.drift] == ["aws_security_group.db"]
    info = lock_info(diagnostics_text(PLAN_JSON))
    assert info is not None and info["Who"] == "bob@ci" and info["ID"] == "abc"

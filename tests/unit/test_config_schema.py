"""The configuration checked against one schema (core/schema.py) and shown with its sources."""

from __future__ import annotations

import pytest
import yaml
from support.paths import ROOT

from spywatcher_ops.core.config import load
from spywatcher_ops.core.errors import BadInput
from spywatcher_ops.core.schema import validate


def test_the_shipped_invoke_yaml_fits_the_schema():
    shipped = yaml.safe_load((ROOT / "invoke.yaml").read_text())["ops"]
    validate(shipped)


def test_the_project_config_loads(ops_config):
    assert load(ops_config).targets.rto["database"] == 60.0


def test_a_value_from_a_variable_is_named_by_the_variable():
    with pytest.raises(
        BadInput, match="^INVOKE_OPS_ENVIRONMENTS_STAGING_REGION: ops.environments.staging.region = 5"
    ):
        validate(
            {"environments": {"staging": {"region": 5}}},
            {("environments", "staging", "region"): "INVOKE_OPS_ENVIRONMENTS_STAGING_REGION"},
        )

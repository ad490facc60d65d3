from datetime import UTC, datetime

import pytest

from spywatcher_ops.core import config as cfg
from spywatcher_ops.core.errors import BadInput
from spywatcher_ops.core.timeparse import check_db_identifier, parse_restore_time

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_project_config_loads_with_defaults(ops_config):
    settings = cfg.load(ops_config)
    assert settings.default_env == "sandbox"
    assert settings.env(None).kind == "sandbox"
    assert settings.targets.rto["database"] == 60
    assert settings.env("staging").resource("spywatcher", "db") == "spywatcher-staging-db"


def test_unknown_environment_lists_known_ones(ops_config):
    with pytest.raises(BadInput, match="known: production, sandbox, staging"):
        cfg.load(ops_config).env("prod")


@pytest.mark.parametrize(
    "value", ["2026-11-25T14:03:00", "yesterday", "2026-11-31T02:00Z", "2027-01-01T00:00Z"]
)
def test_bad_restore_times_are_refused(value):
    with pytest.raises(BadInput, match=value):
        parse_restore_time(value, flag="--to", now=NOW)


def test_restore_time_accepts_zone_and_latest():
    assert parse_restore_time("latest", flag="--to", now=NOW) is None
    assert parse_restore_time("2026-11-25T14:03:00+01:00", flag="--to", now=NOW) == datetime(
        2026, 11, 25, 13, 3, tzinfo=UTC
    )


@pytest.mark.parametrize("bad", ["1abc", "a--b", "abc-", "a" * 64, "a_b"])
def test_rds_identifier_rules(bad):
    with pytest.raises(BadInput, match="--name"):
        check_db_identifier(bad)

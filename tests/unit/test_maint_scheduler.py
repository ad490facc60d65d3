"""The scheduler artefacts in deploy/: the Kubernetes CronJob, the systemd service and
timer, the CI workflow. Each runs `inv maint.run --env production --yes` every Sunday at
02:00 UTC with SPYWATCHER_OPS_CONFIRM=production and holds no secret; the CronJob is
applied to the in-test Kubernetes API server with the official client."""

from __future__ import annotations

import configparser
import re

import yaml
from support.paths import ROOT

DEPLOY = ROOT / "deploy"
COMMAND = ["inv", "maint.run", "--env", "production", "--yes"]
SECRETS = re.compile(
    r"(AKIA[0-9A-Z]{16}|aws_secret_access_key|password\s*[:=]|BEGIN [A-Z ]*PRIVATE KEY|(?<!id-)token\s*[:=]|secrets\.)",
    re.I,
)
FILES = [
    "kubernetes/maintenance-cronjob.yaml",
    "systemd/spywatcher-maintenance.service",
    "systemd/spywatcher-maintenance.timer",
    "ci/maintenance.yml",
]


def cronjob() -> dict:
    docs = list(yaml.safe_load_all((DEPLOY / FILES[0]).read_text()))
    return next(d for d in docs if d["kind"] == "CronJob")


def test_the_cronjob_runs_the_job_sunday_0200_utc_once_at_a_time():
    cj = cronjob()
    spec = cj["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (
        "0 2 * * 0",
        "Etc/UTC",
        "Forbid",
    )
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == COMMAND
    assert {"name": "SPYWATCHER_OPS_CONFIRM", "value": "production"} in container["env"]
    sa = next(d for d in yaml.safe_load_all((DEPLOY / FILES[0]).read_text()) if d["kind"] == "ServiceAccount")
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]  # IRSA, no stored credentials


def test_systemd_service_and_timer():
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.optionxform = str  # type: ignore[assignment,method-assign]
    service.read(DEPLOY / FILES[1])
    assert service["Service"]["ExecStart"].split()[1:] == COMMAND[1:]
    assert service["Service"]["ExecStart"].split()[0].endswith("/inv")
    assert service["Service"]["Environment"] == "SPYWATCHER_OPS_CONFIRM=production"
    assert service["Service"]["Type"] == "oneshot"
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.optionxform = str  # type: ignore[assignment,method-assign]
    timer.read(DEPLOY / FILES[2])
    assert timer["Timer"]["OnCalendar"] == "Sun *-*-* 02:00:00 UTC"
    assert timer["Timer"]["Unit"] == "spywatcher-maintenance.service"


def test_ci_workflow_same_schedule_and_a_manual_trigger():
    wf = yaml.safe_load((DEPLOY / FILES[3]).read_text())
    on = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as true
    assert on["schedule"] == [{"cron": "0 2 * * 0"}] and "workflow_dispatch" in on
    steps = wf["jobs"]["maintenance"]["steps"]
    run = next(s for s in steps if s.get("run", "").startswith("inv "))
    assert run["run"].split() == COMMAND and run["env"] == {"SPYWATCHER_OPS_CONFIRM": "production"}
    assert wf["concurrency"]["cancel-in-progress"] is False


def test_no_secret_in_any_artefact():
    for name in FILES:
        text = (DEPLOY / name).read_text()
        assert not SECRETS.search(text), (name, SECRETS.search(text))


def test_the_cronjob_is_accepted_by_the_kubernetes_api(fake_kube):
    from kubernetes import client

    conf = client.Configuration()
    conf.host = fake_kube.url
    api = client.BatchV1Api(client.ApiClient(conf))
    body = cronjob()
    created = api.create_namespaced_cron_job("spywatcher-ops", body)
    assert created.spec.schedule == "0 2 * * 0" and created.spec.time_zone == "Etc/UTC"
    back = api.read_namespaced_cron_job("spywatcher-maintenance", "spywatcher-ops")
    container = back.spec.job_template.spec.template.spec.containers[0]
    assert container.command == COMMAND and back.spec.concurrency_policy == "Forbid"
    assert back.spec.job_template.spec.backoff_limit == 0

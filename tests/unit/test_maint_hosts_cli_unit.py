"""`inv maint.hosts` through invoke, against real sshd test hosts."""

from __future__ import annotations


def test_plan_settings_of_the_part_2_steps_are_checked(tmp_path):
    from spywatcher_ops.maintenance import plans

    text = (
        "environments:\n  sandbox:\n    steps:\n      - step: os-patch\n        updates: weekly\n"
        "      - step: eks-upgrade\n"
    )
    path = tmp_path / "p.yaml"
    named = plans.PLANS_DIR / path.name  # as a plan of the top-level maintenance/ folder
    problems = [str(p) for p in plans.parse(text, named, {"sandbox": "sandbox", "production": "aws"})[1]]
    assert problems == [
        "maintenance/p.yaml:5: environments.sandbox.steps[1]: os-patch.updates 'weekly': not one of security, all; "
        "which updates to apply: security or all, e.g. 'security'",
        "maintenance/p.yaml:6: environments.sandbox.steps[2]: step eks-upgrade cannot run on a sandbox environment "
        "(sandbox); it runs on: aws",
    ]

"""`inv db.*` end to end: the real `inv` command in a subprocess against a moto
server (AWS_ENDPOINT_URL) holding the staging environment, and a real TLS
PostgreSQL for verify. Every bad input exits 2 with one line and changes nothing.
"""

from __future__ import annotations

import subprocess
import sys

from support.paths import ROOT


def test_list_imports_no_provider_library():
    code = (
        "import sys\n"
        "from invoke import Program\n"
        "Program(binary='inv').run(['inv', '--list'], exit=False)\n"
        "heavy = [m for m in ('boto3', 'botocore', 'kubernetes', 'fabric', 'psycopg', 'rich', 'redis', 'moto')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "db.restore" in done.stdout
    assert "HEAVY []" in done.stderr, done.stderr


def test_every_db_task_documents_every_option():
    from invoke import Collection

    from spywatcher_ops.recovery import tasks

    for name, task in Collection.from_module(tasks).tasks.items():
        doc = task.__doc__ or ""
        assert doc.strip() and "Example: inv db." in doc, name
        args = [a for a in task.get_arguments()]
        for arg in args:
            assert arg.help and len(arg.help) > 10, f"db.{name} --{arg.name} has no help"

"""The Infrastructure port: the real terraform CLI, state in S3 (versions) or local.

One wrapper for every terraform command: the binary found on PATH (or
`ops.terraform.binary`), TF_IN_AUTOMATION=1 and -input=false, allowed exit
codes, captured output (streamed for apply), and Terraform's own failures
turned into the toolkit's errors (a held state lock names who holds it and
since when; the toolkit never force-unlocks).

Each environment gets a private data folder under `<state_dir>/terraform/<env>/`
(TF_DATA_DIR, the generated backend config, saved plans, local backups), so
nothing is written into the platform's Terraform code except what `terraform
init` writes there itself (.terraform.lock.hcl).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..core.commands import Completed, run
from ..core.config import PROJECT_ROOT
from ..core.errors import BadInput, Locked, MissingTool, NotReady, OperationFailed

if TYPE_CHECKING:
    from ..core.environment import Environment
    from ..core.ports import ApplyResult, Progress, StateVersion

INSTALL_HINT = (
    "install Terraform 1.6 or newer: https://developer.hashicorp.com/terraform/install "
    "(Debian: add the HashiCorp apt repository, then apt-get install terraform), "
    "or set ops.terraform.binary to its path"
)
# What a destroy or replace of is highlighted and refused without --allow-destroy.
DEFAULT_STATEFUL = [
    "aws_db_instance",
    "aws_rds_cluster",
    "aws_rds_cluster_instance",
    "aws_elasticache_replication_group",
    "aws_elasticache_cluster",
    "aws_s3_bucket",
    "aws_kms_key",
    "aws_eks_cluster",
    "aws_dynamodb_table",
]
BACKENDS = ("s3", "local")
# backend settings the toolkit writes into the -backend-config file as given
_S3_REQUIRED = ("bucket", "key")


@dataclass(frozen=True)
class TerraformSettings:
    env: str
    dir: Path  # the Terraform configuration (root module)
    workspace: str
    var_files: list[Path]
    backend: dict[
        str, Any
    ]  # {"type": "s3", bucket, key, region, dynamodb_table, endpoints, ...} or {"type": "local"}
    stateful: list[str]
    binary: str | None
    work: Path  # <state_dir>/terraform/<env>: data dir, backend config, plans, backups
    profile: str | None = None
    timeout_s: float = 7200.0
    tf_vars: dict[str, str] = field(default_factory=dict)  # passed as TF_VAR_*; undeclared ones are ignored

    @property
    def kind(self) -> str:
        return str(self.backend.get("type", "s3"))

    @property
    def state_key(self) -> str:
        """The S3 object key of this workspace's state (the S3 backend's own rule)."""
        key = str(self.backend["key"])
        if self.workspace == "default":
            return key
        prefix = str(self.backend.get("workspace_key_prefix", "env:"))
        return f"{prefix}/{self.workspace}/{key}"

    @property
    def local_state(self) -> Path:
        return self.work / "terraform.tfstate"


def _path(value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{key} {value!r}: not a path; give a folder, relative to the project or absolute")
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else PROJECT_ROOT / path


def settings_for(environment: Environment) -> TerraformSettings:
    """The environment's `terraform` settings, checked; BadInput names the key that is wrong."""
    name = environment.name
    raw = environment.env.raw.get("terraform")
    where = f"environments.{name}.terraform"
    if not isinstance(raw, dict) or not raw.get("dir"):
        raise BadInput(
            f"{where}.dir: not set; name the folder of the environment's Terraform configuration "
            "(see the README section 'Terraform')"
        )
    common = environment.settings.section("terraform")
    backend = dict(raw.get("backend") or {})
    kind = str(backend.get("type", "s3"))
    if kind not in BACKENDS:
        raise BadInput(f"{where}.backend.type {kind}: unknown; accepted: {', '.join(BACKENDS)}")
    backend["type"] = kind
    if kind == "s3":
        for key in _S3_REQUIRED:
            if not backend.get(key):
                raise BadInput(
                    f"{where}.backend.{key}: not set; the S3 backend needs bucket and key "
                    "(and region, dynamodb_table or use_lockfile)"
                )
        backend.setdefault("region", environment.env.region or "us-east-1")
    workspace = str(raw.get("workspace") or "default")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,90}", workspace):
        raise BadInput(f"{where}.workspace {workspace!r}: not a workspace name; use letters, digits, - and _")
    var_files = [_path(v, f"{where}.var_files") for v in (raw.get("var_files") or [])]
    for vf in var_files:
        if not vf.is_file():
            raise BadInput(f"{where}.var_files {vf}: no such file")
    stateful = raw.get("stateful", common.get("stateful", DEFAULT_STATEFUL))
    if not isinstance(stateful, list) or not all(isinstance(s, str) and s for s in stateful):
        raise BadInput(
            f"{where}.stateful {stateful!r}: must be a list of resource types or TYPE.NAME addresses"
        )
    return TerraformSettings(
        env=name,
        dir=_path(raw["dir"], f"{where}.dir"),
        workspace=workspace,
        var_files=var_files,
        backend=backend,
        stateful=list(stateful),
        binary=common.get("binary") or None,
        work=environment.settings.state_dir / "terraform" / name,
        profile=environment.env.profile,
        timeout_s=float(common.get("timeout_seconds", 7200)),
        tf_vars=_toolkit_vars(environment),
    )


def _toolkit_vars(environment: Environment) -> dict[str, str]:
    """What a configuration that calls the toolkit back (the sandbox's) needs: the environment, the
    merged configuration as a file (written when a Terraform run is set up), and this interpreter."""
    import sys

    import yaml

    path = environment.settings.state_dir / "terraform" / environment.name / "ops-config.yaml"
    raw = {**environment.settings.raw, "state_dir": str(environment.settings.state_dir)}
    return {
        "ops_env": environment.name,
        "ops_config": str(path),
        "python": sys.executable,
        # libyaml's dumper when present: the pure-Python one costs ~20 ms of every `inv infra.*`
        "_text": yaml.dump({"ops": raw}, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)),
    }


def check_configuration(folder: Path, key: str = "terraform.dir") -> None:
    """A Terraform configuration is a folder holding .tf or .tf.json files."""
    if not folder.is_dir():
        raise BadInput(f"{key} {folder}: no such folder; set it to the folder of the Terraform configuration")
    if not any(folder.glob("*.tf")) and not any(folder.glob("*.tf.json")):
        raise BadInput(f"{key} {folder}: not a Terraform configuration (no .tf files in it)")


def find_terraform(binary: str | None = None) -> str:
    if binary:
        if os.access(binary, os.X_OK):
            return binary
        raise MissingTool(f"ops.terraform.binary {binary}: not an executable file", hint=INSTALL_HINT)
    found = shutil.which("terraform")
    if not found:
        raise MissingTool("`terraform` not found on PATH", hint=INSTALL_HINT)
    return found


def hcl_value(value: Any) -> str:
    """A backend setting as HCL: strings, numbers, booleans, lists and maps of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid HCL string
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {hcl_value(v)}" for k, v in value.items()) + " }"
    raise BadInput(f"backend setting {value!r}: only strings, numbers, booleans, lists and maps are accepted")


def backend_config_text(settings: TerraformSettings) -> str:
    if settings.kind == "local":
        return f"path = {hcl_value(str(settings.local_state))}\n"
    return "".join(f"{k} = {hcl_value(v)}\n" for k, v in settings.backend.items() if k != "type")


# --- terraform's output, read --------------------------------------------------

_LOCK_FIELDS = ("ID", "Path", "Operation", "Who", "Version", "Created")
_DONE = {
    "Creation complete": "created",
    "Modifications complete": "updated",
    "Destruction complete": "destroyed",
}
_DONE_RE = re.compile(
    r"^(?P<addr>[^\s:][^:]*): (?P<what>Creation complete|Modifications complete|"
    r"Destruction complete) after"
)


def lock_info(output: str) -> dict[str, str] | None:
    """The `Lock Info:` block of a failed lock acquisition, or None."""
    if "Error acquiring the state lock" not in output:
        return None
    info: dict[str, str] = {}
    for line in output.splitlines():
        m = re.match(r"^\s+(\w+):\s*(.*)$", line)
        if m and m.group(1) in _LOCK_FIELDS:
            info[m.group(1)] = m.group(2).strip()
    return info


def error_summaries(output: str) -> list[str]:
    """`Error: ...` headline plus its first detail line, once each."""
    lines = output.splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        if not line.startswith("Error: "):
            continue
        text = line[len("Error: ") :].strip()
        for detail in lines[i + 1 : i + 12]:
            d = detail.strip()
            if d and not d.startswith(("with ", "on ")) and not re.match(r"^\d+:", d):
                text += f": {d}"
                break
        if text not in found:
            found.append(text)
    return found


def failing_addresses(output: str) -> list[str]:
    found: list[str] = []
    for m in re.finditer(r"^\s+with (\S+),$", output, re.MULTILINE):
        if m.group(1) not in found:
            found.append(m.group(1))
    return found


def applied_resources(output: str) -> list[str]:
    done = []
    for line in output.splitlines():
        m = _DONE_RE.match(line.strip())
        if m:
            done.append(f"{m.group('addr')}: {_DONE[m.group('what')]}")
    return done


# the messages of `plan -json` that are read; a line of another type (two per resource refreshed)
# cannot hold any of these quoted names, so it is skipped unparsed (a third of the parsing time)
_WANTED = ('"planned_change"', '"resource_drift"', '"version"', '"diagnostic"')


def _json_lines(text: str, wanted: tuple[str, ...] = _WANTED) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if not any(w in line for w in wanted):
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


# planned_change actions of `terraform plan -json` -> the action lists of `show -json`
_PLANNED = {"create": ["create"], "update": ["update"], "replace": ["delete", "create"], "delete": ["delete"]}


def planned_changes(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The planned_change and resource_drift messages of `plan -json`, as `show -json` lists them."""
    out: dict[str, list[dict[str, Any]]] = {"resource_changes": [], "resource_drift": []}
    for m in messages:
        kind = m.get("type")
        if kind not in ("planned_change", "resource_drift"):
            continue
        change = m.get("change") or {}
        res = change.get("resource") or {}
        key = "resource_changes" if kind == "planned_change" else "resource_drift"
        out[key].append(
            {
                "address": res.get("addr"),
                "type": res.get("resource_type"),
                "name": res.get("resource_name"),
                "mode": "data"
                if str(res.get("addr", "")).startswith("data.") or ".data." in str(res.get("addr", ""))
                else "managed",
                "change": {"actions": _PLANNED.get(str(change.get("action")), ["no-op"])},
            }
        )
    return out


def diagnostics_text(messages: list[dict[str, Any]]) -> str:
    """Error diagnostics of a -json run as terraform prints them without -json (what raise_for reads)."""
    parts = []
    for m in messages:
        d = m.get("diagnostic") or {}
        if m.get("type") == "diagnostic" and d.get("severity") == "error":
            where = f"\n  with {d['address']},\n" if d.get("address") else ""
            parts.append(f"Error: {d.get('summary', '')}\n{where}\n{d.get('detail', '')}\n")
    return "\n".join(parts)


def raise_for(what: str, done: Completed) -> None:
    """Terraform failed: a held lock -> Locked (exit 3); anything else -> OperationFailed naming the error."""
    output = (done.stdout or "") + "\n" + (done.stderr or "")
    info = lock_info(output)
    if info is not None:
        raise Locked(
            f"the Terraform state is locked by {info.get('Who', '?')} since {info.get('Created', '?')} "
            f"({info.get('Operation', '?')}, lock id {info.get('ID', '?')})",
            hint="wait for that run to finish; if it is dead, its owner releases it with "
            f"`terraform force-unlock {info.get('ID', 'ID')}` by hand: the toolkit never force-unlocks",
        )
    errors = error_summaries(output)
    tail = errors or [x for x in output.strip().splitlines()[-3:]]
    raise OperationFailed(f"terraform {what} failed (exit {done.code}): " + " | ".join(tail))


# --- the port --------------------------------------------------------------------


@dataclass
class Terraform:
    """Implements core.ports.Infrastructure for one environment."""

    settings: TerraformSettings
    binary: str = field(default="")

    def __post_init__(self) -> None:
        check_configuration(self.settings.dir, f"environments.{self.settings.env}.terraform.dir")
        self.binary = find_terraform(self.settings.binary)
        text = self.settings.tf_vars.pop("_text", None)
        if text is not None:
            path = Path(self.settings.tf_vars["ops_config"])
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
                path.chmod(0o600)

    # -- the command wrapper
    @property
    def data_dir(self) -> Path:
        return self.settings.work / "data"

    def _env(self) -> dict[str, str]:
        env = {
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "TF_DATA_DIR": str(self.data_dir),
            "CHECKPOINT_DISABLE": "1",
        }
        if self.settings.profile:
            env["AWS_PROFILE"] = self.settings.profile
        env.update({f"TF_VAR_{k}": v for k, v in self.settings.tf_vars.items()})
        return env

    def run(self, *args: str, ok_codes: tuple[int, ...] = (0,), timeout: float | None = 600) -> Completed:
        """One terraform command to completion; a code outside ok_codes raises (lock -> Locked)."""
        self.settings.work.mkdir(parents=True, exist_ok=True)
        done = run(
            [self.binary, *args],
            ok_codes=range(256),
            env=self._env(),
            cwd=str(self.settings.dir),
            timeout=timeout,
        )
        if done.code not in ok_codes:
            raise_for(args[0], done)
        return done

    def _spawn(self, *args: str) -> tuple[subprocess.Popen[bytes], IO[bytes], list[str]]:
        """Start a terraform command with its output going to an unlinked temporary file (a pipe
        left unread while the caller works would fill and stall terraform)."""
        self.settings.work.mkdir(parents=True, exist_ok=True)
        output = _scratch(self.settings.work)
        argv = [self.binary, *args]
        try:
            proc = subprocess.Popen(
                argv,
                cwd=str(self.settings.dir),
                env={**os.environ, **self._env()},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            output.close()
            raise OperationFailed(f"cannot run `{self.binary}`: {exc.strerror}") from exc
        return proc, output, argv

    def _finish(
        self,
        proc: subprocess.Popen[bytes],
        output: IO[bytes],
        argv: list[str],
        *,
        timeout: float,
        meanwhile: Callable[[], object] | None,
    ) -> Completed:
        """Run `meanwhile` while terraform works, then wait for it. On an interrupt, a timeout or
        an error terraform stops gracefully (releasing the state lock; SIGKILL left it held):
        see `_stop`."""
        deadline = time.monotonic() + timeout
        with output:
            try:
                if meanwhile is not None:
                    meanwhile()
                code = _wait(proc, max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _stop(proc, interrupt=True)
                raise OperationFailed(
                    f"`terraform {argv[1]}` did not finish within {timeout:.0f} s"
                ) from None
            except BaseException as exc:
                _stop(proc, interrupt=not _got_it_too(exc))
                raise
            output.seek(0)
            text = output.read().decode("utf-8", errors="replace")
        return Completed(argv, code, text, "")

    @cached_property
    def version(self) -> str:
        done = self.run("version", "-json")
        try:
            return str(json.loads(done.stdout)["terraform_version"])
        except (ValueError, KeyError):
            return done.stdout.split("\n", 1)[0].replace("Terraform v", "").strip()

    def describe(self) -> dict[str, Any]:
        s = self.settings
        where = f"s3://{s.backend['bucket']}/{s.state_key}" if s.kind == "s3" else str(s.local_state)
        return {
            "terraform": self.version,
            "binary": self.binary,
            "dir": str(s.dir),
            "workspace": s.workspace,
            "backend": s.kind,
            "state": where,
        }

    def workspace(self) -> str:
        return self.settings.workspace

    def stateful(self) -> list[str]:
        return list(self.settings.stateful)

    def plans_dir(self) -> Path:
        return self.settings.work / "plans"

    def _var_args(self) -> list[str]:
        return [f"-var-file={v}" for v in self.settings.var_files]

    def prepare(self) -> None:
        """`terraform init` with the generated backend config, skipped when nothing it depends on changed."""
        s = self.settings
        s.work.mkdir(parents=True, exist_ok=True)
        text = backend_config_text(s)
        config = s.work / "backend.hcl"
        if not config.exists() or config.read_text() != text:
            config.write_text(text)
            config.chmod(0o600)
        # what init depends on, as a checksum (zlib's: hashlib's OpenSSL load costs 3 ms of every plan)
        inputs = "\0".join([text, str(s.dir), s.workspace, self.binary, _lock_file(s.dir)]).encode()
        fingerprint = f"crc32 {zlib.crc32(inputs):08x} {len(inputs)}"
        marker = self.data_dir / "spywatcher-init"
        if (
            marker.exists()
            and marker.read_text() == fingerprint
            and (self.data_dir / "terraform.tfstate").exists()
        ):
            return
        self.run(
            "init",
            "-input=false",
            "-no-color",
            "-reconfigure",
            f"-backend-config={config}",
            timeout=s.timeout_s,
        )
        if s.workspace != "default":
            self.run("workspace", "select", "-or-create=true", "-no-color", s.workspace)
        marker.write_text(fingerprint)

    def plan(
        self, out: Path, *, destroy: bool = False, meanwhile: Callable[[], object] | None = None
    ) -> dict[str, Any]:
        """`terraform plan -out` with its machine-readable output (-json): the changes come from its
        planned_change / resource_drift messages, shaped like `show -json`'s resource_changes, so no
        second process is needed. {"changes": bool, "resource_changes": [...], "resource_drift": [...]}
        `meanwhile` runs while terraform plans (the caller's own start-up work, off the wall clock)."""
        out.parent.mkdir(parents=True, exist_ok=True)
        args = [
            "plan",
            "-input=false",
            "-json",
            "-lock-timeout=0s",
            "-detailed-exitcode",
            f"-out={out}",
            *self._var_args(),
        ]
        if destroy:
            args.append("-destroy")
        proc, output, argv = self._spawn(*args)
        done = self._finish(proc, output, argv, timeout=self.settings.timeout_s, meanwhile=meanwhile)
        messages = _json_lines(done.stdout)
        if done.code not in (0, 2):
            raise_for(
                "plan",
                Completed(done.argv, done.code, diagnostics_text(messages) or done.stdout, done.stderr),
            )
        for m in messages:
            if m.get("type") == "version" and m.get("terraform"):
                self.__dict__["version"] = str(m["terraform"])  # saves `terraform version` later
        return {"changes": done.code == 2, **planned_changes(messages)}

    def show(self, plan: Path) -> dict[str, Any]:
        done = self.run("show", "-json", "-no-color", str(plan))
        try:
            data: dict[str, Any] = json.loads(done.stdout)
        except ValueError as exc:
            raise OperationFailed(f"terraform show -json {plan}: output is not JSON ({exc})") from exc
        return data

    def apply(self, plan: Path, *, on_line: Progress) -> ApplyResult:
        """Apply a saved plan, streaming every line to `on_line`. On Ctrl-C or SIGTERM terraform
        gets one SIGINT (it stops gracefully and writes the state); we wait for it and re-raise."""
        from ..core.ports import ApplyResult  # ports is not on infra.plan's start-up path

        # terraform writes to a file we follow, not to a pipe: if inv is killed (SIGKILL, a lost
        # session), a pipe would SIGPIPE terraform mid-apply, before it records what it made
        proc, sink, argv = self._spawn("apply", "-input=false", "-no-color", "-lock-timeout=0s", str(plan))
        lines: list[str] = []
        interrupted: KeyboardInterrupt | None = None
        with sink:
            pending, offset = b"", 0
            while True:
                try:
                    chunk = os.pread(sink.fileno(), 1 << 16, offset)  # terraform's own offset untouched
                    if chunk:
                        offset += len(chunk)
                        pending += chunk
                        *whole, pending = pending.split(b"\n")
                        for raw in whole:
                            line = raw.decode("utf-8", errors="replace")
                            lines.append(line + "\n")
                            on_line(line)
                    elif proc.poll() is not None:
                        break
                    else:
                        time.sleep(0.05)
                except KeyboardInterrupt as exc:
                    interrupted = exc  # terraform stops gracefully and writes the state: let it finish
                    if proc.poll() is None and not _got_it_too(exc):
                        proc.send_signal(signal.SIGINT)
            if pending:
                lines.append(pending.decode("utf-8", errors="replace"))
                on_line(lines[-1])
        code = proc.wait()
        output = "".join(lines)
        if interrupted is not None:
            raise interrupted
        result = ApplyResult(
            code=code,
            output=output,
            applied=applied_resources(output),
            failed=failing_addresses(output),
            errors=error_summaries(output),
        )
        if code != 0 and lock_info(output) is not None:
            raise_for("apply", Completed(argv, code, output, ""))
        return result

    # -- state and its versions
    @cached_property
    def _s3(self) -> Any:
        import boto3
        from botocore.config import Config

        b = self.settings.backend
        endpoint = (b.get("endpoints") or {}).get("s3") or b.get("endpoint") or None
        session = boto3.Session(
            profile_name=b.get("profile") or self.settings.profile, region_name=str(b.get("region"))
        )
        style = "path" if b.get("use_path_style") or b.get("force_path_style") else "auto"
        return session.client(
            "s3",
            endpoint_url=endpoint,
            config=Config(s3={"addressing_style": style}, retries={"max_attempts": 3}),
        )

    def _bucket(self) -> str:
        return str(self.settings.backend["bucket"])

    def state(self) -> dict[str, Any] | None:
        if self.settings.kind == "local":
            path = self.settings.local_state
            return _parse_state(path.read_bytes(), str(path)) if _has_state(path) else None
        from botocore.exceptions import ClientError

        try:
            body = self._s3.get_object(Bucket=self._bucket(), Key=self.settings.state_key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise _s3_error(exc, self._bucket()) from exc
        return _parse_state(body, f"s3://{self._bucket()}/{self.settings.state_key}")

    def versioning(self) -> str:
        if self.settings.kind == "local":
            return "local"
        from botocore.exceptions import ClientError

        try:
            status = self._s3.get_bucket_versioning(Bucket=self._bucket()).get("Status")
        except ClientError as exc:
            raise _s3_error(exc, self._bucket()) from exc
        return str(status or "off")

    def state_versions(self) -> list[StateVersion]:
        """Newest first, each with the serial and lineage read from its content."""
        if self.settings.kind == "local":
            return self._local_versions()
        from botocore.exceptions import ClientError

        from ..core.ports import StateVersion

        found = []
        try:
            pages = self._s3.get_paginator("list_object_versions").paginate(
                Bucket=self._bucket(), Prefix=self.settings.state_key
            )
            for page in pages:
                for v in page.get("Versions", []):
                    if v["Key"] == self.settings.state_key:
                        found.append(v)
        except ClientError as exc:
            raise _s3_error(exc, self._bucket()) from exc
        found.sort(key=lambda v: v["LastModified"], reverse=True)  # stable: S3 lists newest first already
        versions = []
        for v in found:
            doc = self.state_version(str(v["VersionId"]))
            versions.append(
                StateVersion(
                    id=str(v["VersionId"]),
                    modified=v["LastModified"],
                    size_bytes=int(v["Size"]),
                    serial=doc.get("serial"),
                    lineage=doc.get("lineage"),
                    latest=bool(v.get("IsLatest")),
                )
            )
        return versions

    def state_version(self, version_id: str) -> dict[str, Any]:
        if self.settings.kind == "local":
            path = self.settings.work / "backups" / f"{version_id}.tfstate"
            if not re.fullmatch(r"[\w.-]+", version_id) or not path.exists():
                raise BadInput(
                    f"--version {version_id}: no such state version; list them with inv infra.state "
                    f"--env {self.settings.env} --versions"
                )
            return _parse_state(path.read_bytes(), str(path))
        from botocore.exceptions import ClientError

        try:
            body = self._s3.get_object(
                Bucket=self._bucket(), Key=self.settings.state_key, VersionId=version_id
            )["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchVersion", "NoSuchKey", "InvalidArgument", "404"):
                raise BadInput(
                    f"--version {version_id}: no such version of s3://{self._bucket()}/"
                    f"{self.settings.state_key}; list them with inv infra.state --env "
                    f"{self.settings.env} --versions"
                ) from None
            raise _s3_error(exc, self._bucket()) from exc
        return _parse_state(body, f"version {version_id}")

    def backup_state(self, label: str) -> str | None:
        """The version to roll back to: S3 keeps every version, so the current one's id; the
        local backend gets a copy in backups/ named `label-serialN`."""
        if self.settings.kind == "s3":
            from botocore.exceptions import ClientError

            try:
                head = self._s3.head_object(Bucket=self._bucket(), Key=self.settings.state_key)
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                    return None
                raise _s3_error(exc, self._bucket()) from exc
            return str(head.get("VersionId")) if head.get("VersionId") else None
        path = self.settings.local_state
        if not _has_state(path):
            return None
        doc = _parse_state(path.read_bytes(), str(path))
        version = f"{label}-serial{doc.get('serial')}"
        folder = self.settings.work / "backups"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, folder / f"{version}.tfstate")
        return version

    def _local_versions(self) -> list[StateVersion]:
        from ..core.ports import StateVersion

        out = []
        path = self.settings.local_state
        if _has_state(path):
            doc = _parse_state(path.read_bytes(), str(path))
            out.append(
                StateVersion(
                    id="current",
                    modified=_mtime(path),
                    size_bytes=path.stat().st_size,
                    serial=doc.get("serial"),
                    lineage=doc.get("lineage"),
                    latest=True,
                )
            )
        folder = self.settings.work / "backups"
        for f in sorted(folder.glob("*.tfstate"), reverse=True) if folder.exists() else []:
            doc = _parse_state(f.read_bytes(), str(f))
            out.append(
                StateVersion(
                    id=f.stem,
                    modified=_mtime(f),
                    size_bytes=f.stat().st_size,
                    serial=doc.get("serial"),
                    lineage=doc.get("lineage"),
                    latest=False,
                )
            )
        return out

    def push_state(self, state: dict[str, Any]) -> None:
        """`terraform state push`: through Terraform's lock, refused by Terraform itself on a lineage
        mismatch or a serial lower than the current one."""
        self.settings.work.mkdir(parents=True, exist_ok=True)
        staged = self.settings.work / "push.tfstate"
        staged.write_text(json.dumps(state, indent=2))
        try:
            self.run("state", "push", "-lock-timeout=0s", str(staged))
        finally:
            staged.unlink(missing_ok=True)


def _scratch(folder: Path) -> IO[bytes]:
    """An unlinked 0600 file in `folder` for a command's output (tempfile's TemporaryFile, without
    importing tempfile and random: ~5 ms of every plan)."""
    path = folder / f".output-{os.getpid()}-{time.monotonic_ns()}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.unlink(path)
    return os.fdopen(fd, "w+b")


def _got_it_too(exc: BaseException) -> bool:
    """Did terraform get the signal behind this exception? A plain KeyboardInterrupt is a SIGINT,
    which a terminal's Ctrl-C (or a signal to the process group) delivers to terraform as well; a
    second SIGINT would make terraform exit at once, without writing the state or releasing its
    lock. SIGTERM/SIGHUP (core.cli raises a KeyboardInterrupt subclass) and errors reach only us."""
    return type(exc) is KeyboardInterrupt


def _wait(proc: subprocess.Popen[Any], timeout: float) -> int:
    """proc.wait(timeout), woken by terraform's exit: Popen.wait with a timeout polls, sleeping up
    to 50 ms between looks (~25 ms of every terraform command's wall time, after it ended). A pidfd
    is readable when the process exits; without pidfd_open (not Linux 5.3+) Popen's own wait."""
    if proc.returncode is not None:
        return proc.returncode  # reaped: its pid may be someone else's now
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(int(timeout * 1000) + 1):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def _stop(proc: subprocess.Popen[Any], *, interrupt: bool) -> None:
    """Wait for terraform's graceful stop (it releases the state lock); `interrupt`: send it the one
    SIGINT that starts it first, and SIGKILL after 30 s."""
    if proc.poll() is not None:
        return
    if not interrupt:
        proc.wait()
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _lock_file(folder: Path) -> str:
    lock = folder / ".terraform.lock.hcl"
    return lock.read_text() if lock.exists() else ""


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _has_state(path: Path) -> bool:
    """A local state file with something in it: terraform creates it empty when it takes its lock,
    so one killed before its first write leaves an empty file, which terraform reads as no state."""
    return path.is_file() and path.stat().st_size > 0


def _parse_state(body: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise OperationFailed(f"Terraform state at {where} is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise OperationFailed(f"Terraform state at {where} is not a state document")
    return doc


def _s3_error(exc: Any, bucket: str) -> NotReady:
    code = exc.response["Error"]["Code"]
    if code in ("NoSuchBucket", "404"):
        return NotReady(
            f"state bucket {bucket}: does not exist",
            hint="create it with versioning on, or fix environments.<env>.terraform.backend.bucket",
        )
    if code in ("AccessDenied", "403"):
        return NotReady(f"state bucket {bucket}: access denied ({exc})")
    return NotReady(f"state bucket {bucket}: {exc}")


def for_environment(environment: Environment) -> Terraform:
    return Terraform(settings_for(environment))

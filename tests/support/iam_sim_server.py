"""IAM's SimulatePrincipalPolicy on loopback, for `inv` subprocesses.

moto does not implement the policy simulation, and a botocore Stubber cannot
reach into another process. This answers the one operation over HTTP in the
AWS Query protocol (form-encoded request, XML reply), so the real client
parses a real reply. Point a subprocess at it with AWS_ENDPOINT_URL_IAM; every
other service keeps AWS_ENDPOINT_URL (moto).

`deny` names the actions to answer `implicitDeny` on any resource; `deny_on` holds
(action, resource ARN) pairs denied on that resource only (a policy scoped to others);
everything else is `allowed`. As IAM does, the reply has one result per action and asked
resource (EvalResourceName; "*" when none was asked). `requests` keeps each simulation
asked for (PolicySourceArn, ActionNames, ResourceArns).
"""

from __future__ import annotations

import uuid
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from support.loopback_http import QuietHandler, serve, stop

NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def _member_list(form: dict[str, list[str]], name: str) -> list[str]:
    """ActionNames.member.1, .2, ... in order."""
    items = [(int(k.rsplit(".", 1)[1]), v[0]) for k, v in form.items() if k.startswith(f"{name}.member.")]
    return [v for _, v in sorted(items)]


class IamSimulation:
    def __init__(self, deny: set[str] | None = None) -> None:
        self.deny = set(deny or ())
        self.deny_on: set[tuple[str, str]] = set()
        self.requests: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def reply(self, form: dict[str, list[str]]) -> tuple[int, str]:
        action = (form.get("Action") or [""])[0]
        request_id = str(uuid.uuid4())
        if action != "SimulatePrincipalPolicy":
            return 400, (
                f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>InvalidAction</Code>'
                f"<Message>{escape(action)} is not served by the test IAM endpoint</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            )
        source = (form.get("PolicySourceArn") or [""])[0]
        actions = _member_list(form, "ActionNames")
        resources = _member_list(form, "ResourceArns")
        self.requests.append({"PolicySourceArn": source, "ActionNames": actions, "ResourceArns": resources})
        members = "".join(
            f"<member><EvalActionName>{escape(a)}</EvalActionName><EvalResourceName>{escape(r)}</EvalResourceName>"
            f"<EvalDecision>{'implicitDeny' if self.denied(a, r) else 'allowed'}</EvalDecision>"
            "<MatchedStatements/><MissingContextValues/></member>"
            for a in actions
            for r in resources or ["*"]
        )
        return 200, (
            f'<SimulatePrincipalPolicyResponse xmlns="{NS}"><SimulatePrincipalPolicyResult>'
            f"<IsTruncated>false</IsTruncated><EvaluationResults>{members}</EvaluationResults>"
            f"</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>{request_id}</RequestId>"
            "</ResponseMetadata></SimulatePrincipalPolicyResponse>"
        )

    def denied(self, action: str, resource: str) -> bool:
        return action in self.deny or (action, resource) in self.deny_on

    def serve(self) -> str:
        sim = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                code, body = sim.reply(parse_qs(self.rfile.read(length).decode(), keep_blank_values=True))
                self.reply(code, body.encode(), "text/xml")

        self._server, self.url = serve(Handler, "iam-simulation")
        return self.url

    def close(self) -> None:
        stop(self._server)

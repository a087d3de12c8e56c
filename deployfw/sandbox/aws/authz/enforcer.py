"""The hook in the sandbox's request path: authenticate, authorise, refuse like AWS.

:class:`IamEnforcer` is what ``SandboxApp`` consults before moto sees a request (when the sandbox
enforces IAM), and what answers ``iam:SimulatePrincipalPolicy``/``SimulateCustomPolicy`` (always,
with the same evaluator). Authentication is moto's own (the access key's user or role session,
SigV4 recomputed with its secret); authorisation is :func:`deployfw.iam.evaluate.evaluate` over
the principal's identity policies for every check :mod:`.requests` derives from the request.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from deployfw.iam.evaluate import Evaluation, Source, evaluate
from deployfw.sandbox.aws import protocol
from deployfw.sandbox.aws.authz import principals
from deployfw.sandbox.aws.authz.principals import Keys
from deployfw.sandbox.aws.authz.requests import Check, Where, checks

ADMIN_USER = "deployfw-admin"
JENKINS_USER = "jenkins-agent"
Answer = tuple[int, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class Verdict:
    """What the enforcer decided for one request: who, and each check's decision."""

    principal: str | None
    checks: tuple[tuple[Check, Evaluation], ...]
    refusal: Answer | None

    def log(self) -> list[dict[str, str]]:
        return [{"action": c.action, "resource": c.resource, "decision": e.decision} for c, e in self.checks]


class IamEnforcer:
    """IAM for one sandbox (account ``account``); ``enforcing`` False only answers simulations."""

    def __init__(self, account: str, lock: threading.RLock, *, enforcing: bool = True) -> None:
        self.account = account
        self.lock = lock
        self.enforcing = enforcing
        self.admin: Keys | None = None
        self.jenkins: Keys | None = None

    def setup(self) -> IamEnforcer:
        """Create the administrator and the Jenkins agent user (idempotent)."""
        with self.lock:
            self.admin = principals.ensure_user(self.account, ADMIN_USER, principals.ADMIN_POLICY, "administrator")
            self.jenkins = principals.ensure_user(self.account, JENKINS_USER)
        return self

    def role_session(self, role_arn: str, session_name: str, region: str) -> Keys:
        """Credentials of a session of ``role_arn``: what a service (CodeBuild) gets when it assumes the role."""
        with self.lock:
            return principals.session_for(self.account, role_arn, session_name, region)

    def decide(self, principal: str, check: Check, region: str) -> Evaluation:
        """One check for ``principal`` (a service acting as a role checks its role's permissions this way)."""
        with self.lock:
            sources = principals.policies_of(self.account, principal)
        context = {**self._global_context(principal, region), **check.context}
        return evaluate(sources, check.action, check.resource, context)

    # -- the request path --------------------------------------------------------------------

    def authorize(self, environ: dict[str, Any], call: protocol.AwsCall, body: bytes) -> Verdict:
        """Authenticate and authorise one request; ``refusal`` is the answer to send instead of moto's."""
        identity = self._authenticate(environ, call, body)
        if isinstance(identity, tuple):
            return Verdict(None, (), identity)
        principal = identity
        where = Where(self.account, call.region, self._lookup)
        decided: list[tuple[Check, Evaluation]] = []
        with self.lock:
            sources = principals.policies_of(self.account, principal)
            for check in checks(call.service, call.operation, call.params, where):
                context = {**self._global_context(principal, call.region), **check.context}
                decision = evaluate(sources, check.action, check.resource, context)
                decided.append((check, decision))
                if not decision.allowed:
                    return Verdict(principal, tuple(decided), self._denied(call, principal, check, decision))
        return Verdict(principal, tuple(decided), None)

    def _authenticate(self, environ: dict[str, Any], call: protocol.AwsCall, body: bytes) -> str | Answer:
        """The principal's ARN (moto's access-key lookup and SigV4 check), or the refusal AWS sends."""
        from moto.core.exceptions import ServiceException, _RESTError
        from moto.iam.access_control import IAMRequest, S3IAMRequest
        from werkzeug.datastructures import EnvironHeaders

        if "Credential=" not in environ.get("HTTP_AUTHORIZATION", ""):
            return protocol.error_response(call, 403, _denied_code(call), "Request is missing Authentication Token")
        query = environ.get("QUERY_STRING", "")
        path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        if query and "?" not in path:
            path = f"{path}?{query}"
        request_cls = S3IAMRequest if call.service == "s3" else IAMRequest
        try:
            with self.lock:
                request = request_cls(account_id=self.account, method=environ.get("REQUEST_METHOD", "GET"), path=path,
                                      data={}, body=body, headers=EnvironHeaders(environ),  # type: ignore[arg-type]
                                      action=call.operation)  # fmt: skip
                request.check_signature()
                return str(request._access_key.arn)
        except (_RESTError, ServiceException) as exc:  # moto's refusal of the key or the signature
            moto_code = str(getattr(exc, "error_type", None) or getattr(exc, "code", "InvalidClientTokenId"))
            code, message = _auth_error(call, moto_code, str(getattr(exc, "message", exc)))
            return protocol.error_response(call, 400 if call.protocol == "json" else 403, code, message)

    @staticmethod
    def _global_context(principal: str, region: str) -> dict[str, tuple[str, ...]]:
        return {
            "aws:PrincipalArn": (principal,),
            "aws:PrincipalAccount": (principal.split(":")[4],),
            "aws:RequestedRegion": (region,),
        }

    def _denied(self, call: protocol.AwsCall, principal: str, check: Check, decision: Evaluation) -> Answer:
        why = (
            "with an explicit deny in an identity-based policy"
            if decision.decision == "explicitDeny"
            else f"because no identity-based policy allows the {check.action} action"
        )
        # AWS says "User:" for users and role sessions alike.
        message = f"User: {principal} is not authorized to perform: {check.action} on resource: {check.resource} {why}"
        if call.protocol == "ec2":
            message = f"You are not authorized to perform this operation. {message}"
        status = 400 if call.protocol == "json" else 403
        return protocol.error_response(call, status, _denied_code(call), message)

    def _lookup(self, kind: str, region: str, key: str) -> str | None:
        """Facts a check needs that the request does not carry (held under the sandbox lock)."""
        with self.lock:
            if kind == "ecs-next-revision":
                from moto.ecs.models import ecs_backends

                revisions = ecs_backends[self.account][region].task_definitions.get(key) or {}
                return str(max(revisions, default=0) + 1)
            if kind == "codedeploy-deployment-group":
                from moto.codedeploy.models import codedeploy_backends

                deployment = codedeploy_backends[self.account][region].deployments.get(key)
                if deployment is None:
                    return None
                return f"{deployment.application_name}/{deployment.deployment_group_name}"
            if kind == "secret-arn":
                from moto.secretsmanager.models import secretsmanager_backends

                try:
                    secrets = secretsmanager_backends[self.account][region]
                    return str(secrets.describe_secret(key).arn)
                except Exception:
                    return None
        return None

    # -- simulations ---------------------------------------------------------------------------

    def simulates(self, call: protocol.AwsCall) -> bool:
        return call.service == "iam" and call.operation in ("SimulatePrincipalPolicy", "SimulateCustomPolicy")

    def simulate(self, call: protocol.AwsCall) -> Answer:
        """SimulatePrincipalPolicy / SimulateCustomPolicy with the evaluator the sandbox enforces with.

        A sandbox that does not enforce IAM allows everything, and says so: every decision is "allowed".
        """
        params = call.params
        actions = _members(params, "ActionNames")
        resources = _members(params, "ResourceArns") or ["*"]
        context = _context_entries(params)
        try:
            with self.lock:
                if call.operation == "SimulateCustomPolicy":
                    sources = [Source(f"PolicyInputList.{n}", json.loads(doc))
                               for n, doc in enumerate(_members(params, "PolicyInputList"), 1)]  # fmt: skip
                elif self.enforcing:
                    sources = principals.policies_of(self.account, str(params.get("PolicySourceArn", "")))
                else:
                    sources = [Source("sandbox-without-iam", principals.ADMIN_POLICY)]
        except Exception:  # moto's NoSuchEntity, a malformed ARN, a policy that is no JSON
            message = f"The principal {params.get('PolicySourceArn')} cannot be found or has no readable policies."
            return protocol.error_response(call, 404, "NoSuchEntity", message)
        results = [[evaluate(sources, action, resource, context) for resource in resources] for action in actions]
        return 200, [("Content-Type", "text/xml")], _simulation_xml(call.operation, results)


def _denied_code(call: protocol.AwsCall) -> str:
    if call.protocol == "ec2":
        return "UnauthorizedOperation"
    if call.protocol in ("json", "rest-json"):
        return "AccessDeniedException"
    return "AccessDenied"


def _auth_error(call: protocol.AwsCall, moto_code: str, message: str) -> tuple[str, str]:
    """The code AWS uses in ``call``'s protocol for a bad key or signature."""
    bad_signature = "Signature" in moto_code
    if call.protocol == "ec2":
        return "AuthFailure", message
    if call.protocol in ("json", "rest-json"):
        if bad_signature:
            return "InvalidSignatureException", message
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    if call.protocol == "rest-xml":
        return ("SignatureDoesNotMatch" if bad_signature else "InvalidAccessKeyId"), message
    return ("SignatureDoesNotMatch" if bad_signature else "InvalidClientTokenId"), message


def _members(params: Mapping[str, Any], name: str) -> list[str]:
    prefix = f"{name}.member."
    found = sorted((int(k[len(prefix):]), str(v)) for k, v in params.items()
                   if k.startswith(prefix) and k[len(prefix):].isdigit())  # fmt: skip
    return [v for _, v in found]


def _context_entries(params: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    entries: dict[str, tuple[str, ...]] = {}
    index = 1
    while f"ContextEntries.member.{index}.ContextKeyName" in params:
        base = f"ContextEntries.member.{index}"
        entries[str(params[f"{base}.ContextKeyName"])] = tuple(_members(params, f"{base}.ContextKeyValues"))
        index += 1
    return entries


def _simulation_xml(operation: str, results: Sequence[Sequence[Evaluation]]) -> bytes:
    members = []
    for per_resource in results:
        first = per_resource[0]
        overall = "allowed" if all(e.allowed for e in per_resource) else (
            "explicitDeny" if any(e.decision == "explicitDeny" for e in per_resource) else "implicitDeny")
        specific = "".join(
            f"<member><EvalResourceName>{escape(e.resource)}</EvalResourceName>"
            f"<EvalResourceDecision>{e.decision}</EvalResourceDecision>{_matched(e)}</member>"
            for e in per_resource
        )
        resource = first.resource if len(per_resource) == 1 else "*"
        members.append(
            f"<member><EvalActionName>{escape(first.action)}</EvalActionName>"
            f"<EvalResourceName>{escape(resource)}</EvalResourceName><EvalDecision>{overall}</EvalDecision>"
            f"{_matched(first) if len(per_resource) == 1 else ''}"
            f"<MissingContextValues>{''.join(f'<member>{escape(k)}</member>' for k in first.missing_context)}"
            f"</MissingContextValues>"
            f"{f'<ResourceSpecificResults>{specific}</ResourceSpecificResults>' if len(per_resource) > 1 else ''}"
            "</member>"
        )
    body = (
        f'<{operation}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><{operation}Result>'
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{''.join(members)}</EvaluationResults>"
        f"</{operation}Result><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{operation}Response>"
    )
    return body.encode()


def _matched(evaluation: Evaluation) -> str:
    return "<MatchedStatements>" + "".join(
        f"<member><SourcePolicyId>{escape(m.policy)}</SourcePolicyId><SourcePolicyType>IAM Policy</SourcePolicyType>"
        "</member>"
        for m in evaluation.matched
    ) + "</MatchedStatements>"

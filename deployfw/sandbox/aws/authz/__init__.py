"""IAM in the sandbox: who sent a request, what it asks to do to which resource, and whether that is allowed.

Off by default (a sandbox is a stand-in, and most tests care about deployments, not permissions);
``deployfw sandbox --enforce-iam`` or ``DEPLOYFW_SANDBOX_IAM`` switch it on. Then every AWS request
is authenticated (its access key must belong to a user or an assumed role of the sandbox account,
its signature must match) and authorised with :mod:`deployfw.iam.evaluate` against the principal's
identity policies - resources as exact ARNs, condition keys such as ``iam:PassedToService``
included - and refused in the service's own protocol, with AWS's message, when not allowed.
"""

from deployfw.sandbox.aws.authz.enforcer import ADMIN_USER, JENKINS_USER, IamEnforcer

__all__ = ["ADMIN_USER", "JENKINS_USER", "IamEnforcer"]

"""IAM as data: what each backend's AWS calls need, the least-privilege policies built from it,
the evaluator that decides a request against policies, and AccessDenied turned into a fix.

Backends declare their needs next to the calls they make (:class:`~deployfw.backends.DeclaresIam`);
:mod:`deployfw.iam.collect` asks every backend a config uses; :mod:`deployfw.iam.policy` turns the
answers into policy documents (``deployfw iam policy``); :mod:`deployfw.iam.denied` turns an
AccessDenied from AWS into the one statement to add. Nothing here calls AWS.
"""

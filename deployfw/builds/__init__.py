"""The build contract every build backend honours, in the core so every backend shares it.

- :mod:`~deployfw.builds.contract`: the variables a module's buildspec receives, its path,
  deadline and validation (one buildspec.yml runs in CodeBuild, on a Jenkins agent and here);
- :mod:`~deployfw.builds.content`: content tags, computed from the commit's git tree objects, so
  an image is reused exactly when its inputs at that commit are unchanged;
- :mod:`~deployfw.builds.execute`: running a buildspec on this machine under a deadline and a
  cancel signal (the ``local`` backend and ``deployfw build``);
- :mod:`~deployfw.builds.single`: ``deployfw build MODULE``, what a CI job runs for one module.

Nothing here imports boto3 or python-jenkins.
"""

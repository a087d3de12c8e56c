"""load_buildspec: the typed result, and every problem located by line and key path."""

from __future__ import annotations

import textwrap

import pytest

from deployfw.buildspec import load_buildspec
from deployfw.errors import EXIT_BAD_INPUT, InputError, Problem


def problems(text: str) -> list[Problem]:
    with pytest.raises(InputError) as info:
        load_buildspec(textwrap.dedent(text).lstrip("\n"), "svc/buildspec.yml")
    assert info.value.exit_code == EXIT_BAD_INPUT
    return info.value.problems


def only(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


SEED = """\
version: 0.2

phases:
  pre_build:
    commands:
      - echo Logging in to Amazon ECR...
      - echo "IMAGE_TAG - $IMAGE_TAG"
      - aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS --password-stdin $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com
      - echo Pre-build completed on `date`
  build:
    commands:
      - docker build -t $IMAGE_REPO_NAME:$IMAGE_TAG .
  post_build:
    commands:
      - docker push $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$IMAGE_REPO_NAME:$IMAGE_TAG
"""  # noqa: E501


def test_the_seed_buildspec_loads_with_phases_in_codebuild_order() -> None:
    spec = load_buildspec(SEED, "buildspec.yml")
    assert spec.version == "0.2"
    assert [p.name for p in spec.phases] == ["pre_build", "build", "post_build"]
    assert spec.phase("pre_build").commands[1] == 'echo "IMAGE_TAG - $IMAGE_TAG"'
    assert spec.phase("install") is None


def test_full_syntax_is_typed() -> None:
    spec = load_buildspec(
        textwrap.dedent("""\
        version: "0.2"
        env:
          shell: /bin/sh
          variables: {PORT: 8080, FLAG: yes, NAME: api}
          parameter-store: {DB_URL: /shop/db-url}
          secrets-manager: {TOKEN: "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:tok-AbCdEf:token::"}
          exported-variables: [IMAGE_URI]
          git-credential-helper: yes
        phases:
          post_build: {commands: [echo post]}
          install:
            runtime-versions: {java: corretto17}
            on-failure: CONTINUE
            commands: [true]
            finally: [echo done]
        artifacts:
          files: ['**/*']
          base-directory: build/out
          discard-paths: yes
          exclude-paths: '*.tmp'
          name: img-$CODEBUILD_BUILD_NUMBER
        cache: {paths: ['/root/.gradle/**/*']}
        """),
        "buildspec.yml",
    )
    assert spec.env.shell == "/bin/sh"
    # Scalars are kept as written: 8080 and yes are strings, not an int and a bool.
    assert spec.env.variables == {"PORT": "8080", "FLAG": "yes", "NAME": "api"}
    assert spec.env.parameter_store == {"DB_URL": "/shop/db-url"}
    assert spec.env.exported_variables == ("IMAGE_URI",)
    assert spec.env.git_credential_helper is True
    assert [p.name for p in spec.phases] == ["install", "post_build"]
    install = spec.phase("install")
    assert install.commands == ("true",)
    assert install.finally_commands == ("echo done",)
    assert install.on_failure == "CONTINUE"
    assert install.runtime_versions == {"java": "corretto17"}
    assert install.line == 11
    assert spec.artifacts.files == ("**/*",)
    assert spec.artifacts.discard_paths is True
    assert spec.artifacts.exclude_paths == ("*.tmp",)
    assert spec.ignored == ("cache",)


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        ("phases: {build: {commands: [x]}}\n", 1, "version", "is required"),
        ("version: 0.1\nphases: {build: {commands: [x]}}\n", 1, "version", "0.1 is not supported"),
        ("version: 1.0\nphases: {build: {commands: [x]}}\n", 1, "version", "only 0.2"),
        ("version: 0.2\n", 1, "phases", "is required"),
        ("version: 0.2\nphases: {build: {commands: [x]}}\ncahce: {}\n", 3, "cahce", "did you mean 'cache'"),
        (
            "version: 0.2\nphases:\n  build:\n    commands: [x]\n  deploy:\n    commands: [x]\n",
            5,
            "phases.deploy",
            "unknown phase 'deploy'",
        ),
        ("version: 0.2\nphases:\n  build:\n    finally: [x]\n", 3, "phases.build.commands", "is required"),
        ("version: 0.2\nphases:\n  build:\n", 3, "phases.build", "is empty"),
        ("version: 0.2\nphases:\n  build:\n    commands: echo hi\n", 4, "phases.build.commands", "must be a list"),
        (
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo\n      - echo a: b\n",
            6,
            "phases.build.commands[1]",
            "quote the whole item",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    on-failure: IGNORE\n    commands: [x]\n",
            4,
            "phases.build.on-failure",
            "must be ABORT or CONTINUE",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-3\n    commands: [x]\n",
            4,
            "phases.build.on-failure",
            "RETRY forms are not supported",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    on-failure: abort\n    commands: [x]\n",
            4,
            "phases.build.on-failure",
            "upper case",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    runtime-versions: {java: 17}\n    commands: [x]\n",
            4,
            "phases.build.runtime-versions",
            "only allowed in the install phase",
        ),
        (
            "version: 0.2\nenv:\n  shell: zsh\nphases: {build: {commands: [x]}}\n",
            3,
            "env.shell",
            "must be one of bash, /bin/sh",
        ),
        (
            "version: 0.2\nenv:\n  shell: powershell.exe\nphases: {build: {commands: [x]}}\n",
            3,
            "env.shell",
            "Windows shell",
        ),
        (
            "version: 0.2\nenv:\n  varaibles: {A: b}\nphases: {build: {commands: [x]}}\n",
            3,
            "env.varaibles",
            "did you mean 'variables'",
        ),
        (
            "version: 0.2\nenv:\n  variables:\n    A: [1, 2]\nphases: {build: {commands: [x]}}\n",
            4,
            "env.variables.A",
            "must be a string",
        ),
        (
            "version: 0.2\nenv:\n  variables:\n    CODEBUILD_X: y\nphases: {build: {commands: [x]}}\n",
            4,
            "env.variables.CODEBUILD_X",
            "reserved",
        ),
        (
            "version: 0.2\nenv:\n  variables:\n    1BAD: y\nphases: {build: {commands: [x]}}\n",
            4,
            "env.variables.1BAD",
            "not a valid environment variable name",
        ),
        (
            "version: 0.2\nenv:\n  secrets-manager:\n    T: 's:k:AWSCURRENT:v1'\nphases: {build: {commands: [x]}}\n",
            4,
            "env.secrets-manager.T",
            "not both",
        ),
        (
            "version: 0.2\nenv:\n  secrets-manager:\n    T: ':k'\nphases: {build: {commands: [x]}}\n",
            4,
            "env.secrets-manager.T",
            "secret id",
        ),
        (
            "version: 0.2\nenv:\n  exported-variables:\n    - AWS_REGION\nphases: {build: {commands: [x]}}\n",
            4,
            "env.exported-variables[0]",
            "cannot be exported",
        ),
        (
            "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts:\n  name: x\n",
            4,
            "artifacts.files",
            "is required",
        ),
        (
            "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts:\n  files: [a]\n  discard-paths: maybe\n",
            5,
            "artifacts.discard-paths",
            "yes or no",
        ),
        (
            "version: 0.2\nphases: {build: {commands: [x]}}\nartifacts:\n  files:\n    - ../secret\n",
            5,
            "artifacts.files[0]",
            "inside the source directory",
        ),
        (
            "version: 0.2\nphases:\n  build: {commands: [x]}\n  build: {commands: [y]}\n",
            4,
            "phases.build",
            "duplicate key (first on line 3)",
        ),
        ("- version: 0.2\n", 1, None, "must be a mapping"),
    ],
)
def test_each_problem_is_located(text: str, line: int, key: str | None, fragment: str) -> None:
    problem = only(text)
    assert problem.file == "svc/buildspec.yml"
    assert problem.line == line
    assert problem.key == key
    assert fragment in problem.message


def test_a_misspelt_key_is_reported_with_a_suggestion() -> None:
    found = problems("version: 0.2\nphases:\n  build:\n    command: [x]\n")
    assert (4, "phases.build.command") in [(p.line, p.key) for p in found]
    assert "did you mean 'commands'" in " ".join(p.message for p in found)


def test_invalid_yaml_reports_its_line() -> None:
    problem = only("version: 0.2\nphases:\n  build:\n    commands: [x\n  post_build: {}\n")
    assert problem.message.startswith("invalid YAML")
    assert problem.line is not None and problem.line >= 4


def test_empty_document_is_a_problem() -> None:
    assert "empty" in only("# nothing here\n").message


def test_all_problems_are_reported_together() -> None:
    found = problems("""
        version: 0.3
        env:
          shell: zsh
          variables:
            OK: fine
            CODEBUILD_X: y
        phases:
          instal:
            commands: [x]
          build:
            on-failure: RETRY
            commands:
              - echo a: b
        artifacts:
          discard-paths: yes
        unknown: 1
        """)
    located = [(p.line, p.key) for p in found]
    assert located == [
        (1, "version"),
        (3, "env.shell"),
        (6, "env.variables.CODEBUILD_X"),
        (8, "phases.instal"),
        (11, "phases.build.on-failure"),
        (13, "phases.build.commands[0]"),
        (15, "artifacts.files"),
        (16, "unknown"),
    ]
    # The message is one line per problem, each starting with file:line.
    assert str(InputError(found)).splitlines()[0].startswith("svc/buildspec.yml:1: version:")


def test_yaml_merge_keys_and_anchors_are_understood() -> None:
    spec = load_buildspec(
        textwrap.dedent("""\
        version: 0.2
        phases:
          pre_build: &common
            on-failure: CONTINUE
            commands: [echo pre]
          build:
            <<: *common
            commands: [make]
        """),
        "buildspec.yml",
    )
    assert spec.phase("build").on_failure == "CONTINUE"
    assert spec.phase("build").commands == ("make",)

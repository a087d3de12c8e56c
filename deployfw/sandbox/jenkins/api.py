"""The JSON Jenkins's remote API answers for jobs, folders, builds and queue items.

Shapes follow a pipeline-job controller (``WorkflowJob``/``WorkflowRun``), with the
fields clients actually read; ``?tree=`` filtering is implemented because clients use it
to keep responses small (python-jenkins's ``job_exists`` asks for ``tree=name``).
"""

from __future__ import annotations

from typing import Any

from deployfw.sandbox.jenkins.builds import RUN_CLASS, Build
from deployfw.sandbox.jenkins.jobs import FOLDER_CLASS, JOB_CLASS, Folder, Job
from deployfw.sandbox.jenkins.queue import QueueItem
from deployfw.sandbox.jenkins.state import Controller, job_path

Json = dict[str, Any]
_COLORS = {"SUCCESS": "blue", "FAILURE": "red", "UNSTABLE": "yellow", "ABORTED": "aborted"}


def _parameters_action(parameters: dict[str, str]) -> Json:
    return {
        "_class": "hudson.model.ParametersAction",
        "parameters": [
            {"_class": "hudson.model.StringParameterValue", "name": k, "value": v} for k, v in parameters.items()
        ],
    }


def _cause_action(user: str) -> Json:
    return {
        "_class": "hudson.model.CauseAction",
        "causes": [
            {
                "_class": "hudson.model.Cause$UserIdCause",
                "shortDescription": f"Started by user {user}",
                "userId": user,
                "userName": user,
            }
        ],
    }


def build_ref(build: Build | None) -> Json | None:
    """The short ``{_class, number, url}`` form used inside other objects."""
    if build is None:
        return None
    return {"_class": RUN_CLASS, "number": build.number, "url": build.url}


def build_json(controller: Controller, build: Build) -> Json:
    """``job/.../N/api/json``."""
    job = build.job
    actions: list[Json] = []
    if job.parameterized:
        actions.append(_parameters_action(build.parameters))
    actions.append(_cause_action(build.user))
    done = [b for b in controller.builds(job) if b.result == "SUCCESS" and b is not build]
    building = build.building
    return {
        "_class": RUN_CLASS,
        "actions": actions,
        "artifacts": [],
        "building": building,
        "description": None,
        "displayName": f"#{build.number}",
        "duration": 0 if building else build.duration_ms,
        "estimatedDuration": done[0].duration_ms if done else -1,
        "executor": {"_class": "hudson.model.OneOffExecutor"} if building else None,
        "fullDisplayName": f"{job.full_name.replace('/', ' » ')} #{build.number}",
        "id": str(build.number),
        "keepLog": False,
        "number": build.number,
        "queueId": build.queue_id,
        "result": build.result,
        "timestamp": build.timestamp_ms,
        "url": build.url,
        "changeSets": [],
        "culprits": [],
        "inProgress": building,
        "nextBuild": build_ref(controller.build(job, build.number + 1)),
        "previousBuild": build_ref(controller.build(job, build.number - 1)),
    }


def _color(job: Job, builds: list[Build]) -> str:
    if job.disabled:
        return "disabled"
    if not builds:
        return "notbuilt"
    latest = builds[0]
    completed = next((b for b in builds if not b.building), None)
    base = _COLORS.get(completed.result or "", "notbuilt") if completed else "notbuilt"
    return base + "_anime" if latest.building else base


def job_json(controller: Controller, job: Job, *, deep: bool = False) -> Json:
    """``job/.../api/json`` for a pipeline job.

    ``deep`` expands ``builds`` to whole build objects, as a ``tree=`` query can reach
    into them on a real controller (``builds[number,actions[parameters[name,value]]]``).
    """
    builds = controller.builds(job)
    completed = [b for b in builds if not b.building]

    def last(predicate: Any) -> Json | None:
        return build_ref(next((b for b in builds if predicate(b)), None))

    queued = controller.queued_item_for(job)
    url = f"{controller.base_url}{job_path(job.full_name)}"
    return {
        "_class": JOB_CLASS,
        "actions": [],
        "description": "",
        "displayName": job.name,
        "fullDisplayName": job.full_name.replace("/", " » "),
        "fullName": job.full_name,
        "name": job.name,
        "url": url,
        "buildable": not job.disabled,
        "builds": [build_json(controller, b) if deep else build_ref(b) for b in builds[:100]],
        "color": _color(job, builds),
        "firstBuild": build_ref(builds[-1]) if builds else None,
        "inQueue": queued is not None,
        "keepDependencies": False,
        "lastBuild": last(lambda b: True),
        "lastCompletedBuild": build_ref(completed[0]) if completed else None,
        "lastFailedBuild": last(lambda b: b.result == "FAILURE"),
        "lastStableBuild": last(lambda b: b.result == "SUCCESS"),
        "lastSuccessfulBuild": last(lambda b: b.result == "SUCCESS"),
        "lastUnsuccessfulBuild": last(lambda b: b.result not in (None, "SUCCESS")),
        "nextBuildNumber": job.next_build_number,
        "property": (
            [
                {
                    "_class": "hudson.model.ParametersDefinitionProperty",
                    "parameterDefinitions": [
                        {
                            "_class": "hudson.model.StringParameterDefinition",
                            "defaultParameterValue": {
                                "_class": "hudson.model.StringParameterValue",
                                "name": name,
                                "value": default,
                            },
                            "description": "",
                            "name": name,
                            "type": "StringParameterDefinition",
                        }
                        for name, default in job.parameters.items()
                    ],
                }
            ]
            if job.parameterized
            else []
        ),
        "queueItem": queue_item_json(controller, queued) if queued else None,
        "concurrentBuild": True,
        "resumeBlocked": False,
    }


def _item_summary(controller: Controller, item: Folder | Job) -> Json:
    url = f"{controller.base_url}{job_path(item.full_name)}"
    if isinstance(item, Folder):
        return {"_class": FOLDER_CLASS, "name": item.name, "url": url}
    return {
        "_class": JOB_CLASS,
        "name": item.name,
        "url": url,
        "color": _color(item, controller.builds(item)),
    }


def folder_json(controller: Controller, folder: Folder) -> Json:
    """``job/a/api/json`` for a folder, or the root ``api/json`` (``Hudson``)."""
    jobs = [_item_summary(controller, child) for child in folder.children.values()]
    if not folder.full_name:
        return {
            "_class": "hudson.model.Hudson",
            "mode": "NORMAL",
            "nodeDescription": "the Jenkins controller's built-in node",
            "nodeName": "",
            "numExecutors": controller.timing.executors,
            "jobs": jobs,
            "quietingDown": False,
            "url": controller.base_url,
            "useCrumbs": True,
            "useSecurity": True,
            "views": [{"_class": "hudson.model.AllView", "name": "all", "url": controller.base_url}],
        }
    return {
        "_class": FOLDER_CLASS,
        "description": None,
        "displayName": folder.name,
        "fullDisplayName": folder.full_name.replace("/", " » "),
        "fullName": folder.full_name,
        "name": folder.name,
        "url": f"{controller.base_url}{job_path(folder.full_name)}",
        "jobs": jobs,
    }


def queue_item_json(controller: Controller, item: QueueItem) -> Json:
    """``queue/item/N/api/json``: waiting (``why``) or left (``executable``/``cancelled``)."""
    now = controller.clock()
    job = item.job
    actions: list[Json] = []
    if job.parameterized:
        actions.append(_parameters_action(item.parameters))
    actions.append(_cause_action(item.user))
    data: Json = {
        "_class": item.class_name(now),
        "actions": actions,
        "blocked": False,
        "buildable": item.waiting and now >= item.buildable_at,
        "id": item.id,
        "inQueueSince": item.in_queue_since_ms,
        "params": item.params_text(),
        "stuck": False,
        "task": {
            "_class": JOB_CLASS,
            "name": job.name,
            "url": f"{controller.base_url}{job_path(job.full_name)}",
            "color": _color(job, controller.builds(job)),
        },
        "url": f"queue/item/{item.id}/",
        "why": item.why(now, controller.executors_free()),
    }
    if item.waiting:
        data["timestamp"] = item.in_queue_since_ms + int((item.buildable_at - item.in_queue_since) * 1000)
        if data["buildable"]:
            data["pending"] = False
    else:
        data["cancelled"] = item.cancelled
        data["executable"] = build_ref(item.build)
    return data


def queue_json(controller: Controller) -> Json:
    """``queue/api/json``: the items still waiting."""
    return {
        "_class": "hudson.model.Queue",
        "discoverableItems": [],
        "items": [queue_item_json(controller, i) for i in controller.waiting_items()],
    }


def apply_tree(data: Any, tree: str) -> Any:
    """Filter ``data`` by a Jenkins ``tree`` expression (``a,b[c,d]{0,5}``); ``_class`` stays."""
    spec, _ = _parse_tree(tree, 0)
    return _filter(data, spec)


_Spec = dict[str, tuple["_Spec | None", "tuple[int | None, int | None] | None"]]


def _parse_tree(text: str, pos: int) -> tuple[_Spec, int]:
    spec: _Spec = {}
    while pos < len(text):
        start = pos
        while pos < len(text) and text[pos] not in ",[]{":
            pos += 1
        name = text[start:pos].strip()
        sub: _Spec | None = None
        rng: tuple[int | None, int | None] | None = None
        if pos < len(text) and text[pos] == "[":
            sub, pos = _parse_tree(text, pos + 1)
            pos += 1  # the closing ]
        if pos < len(text) and text[pos] == "{":
            end = text.index("}", pos)
            rng = _parse_range(text[pos + 1 : end])
            pos = end + 1
        if name:
            spec[name] = (sub, rng)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            return spec, pos
    return spec, pos


def _parse_range(text: str) -> tuple[int | None, int | None]:
    if "," not in text:
        n = int(text)
        return n, n + 1
    low, high = text.split(",", 1)
    return (int(low) if low.strip() else None, int(high) if high.strip() else None)


def _filter(data: Any, spec: _Spec) -> Any:
    if isinstance(data, list):
        return [_filter(x, spec) for x in data]
    if not isinstance(data, dict):
        return data
    out: Json = {"_class": data["_class"]} if "_class" in data else {}
    for name, (sub, rng) in spec.items():
        if name not in data:
            continue
        value = data[name]
        if rng is not None and isinstance(value, list):
            value = value[rng[0] : rng[1]]
        out[name] = _filter(value, sub) if sub is not None else value
    return out

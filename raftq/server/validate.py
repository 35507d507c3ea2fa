"""Validation of HTTP request bodies into commands' parts, under one name.

The handlers import this module (``from raftq.server import validate as v``);
the checks live by what they check:

- ``raftq.server.json_body``: the body decoded as JSON, non-finite numbers refused;
- ``raftq.server.fields``: one field at a time (objects, strings, integers,
  priorities, queue lists, ``wait_ms``, ``GET /v1/tasks``' query) and the limits;
- ``raftq.server.task_specs``: task specs, one or a batch;
- ``raftq.server.worker_reports``: leases and the outcomes workers report.

Each raises ``InvalidRequest`` naming the field. Nothing here touches the state.
"""

from __future__ import annotations

from raftq.server.fields import (
    DAY_MS,
    KEY_RE,
    MAX_BATCH,
    MAX_CLAIM,
    MAX_ID_LEN,
    MAX_WAIT_MS,
    NAME_RE,
    _f,
    boolean,
    integer,
    list_query,
    obj,
    pack,
    priority,
    string,
    string_list,
    wait_ms,
)
from raftq.server.json_body import json_body
from raftq.server.task_specs import TASK_FIELDS, _plain_task_spec, _task_spec, task_spec, task_specs
from raftq.server.worker_reports import error_value, lease_ms, leases, outcome, result_bytes

__all__ = [
    "DAY_MS", "KEY_RE", "MAX_BATCH", "MAX_CLAIM", "MAX_ID_LEN", "MAX_WAIT_MS", "NAME_RE",
    "TASK_FIELDS", "_f", "_plain_task_spec", "_task_spec", "boolean", "error_value", "integer",
    "json_body", "lease_ms", "leases", "list_query", "obj", "outcome", "pack", "priority",
    "result_bytes", "string", "string_list", "task_spec", "task_specs", "wait_ms",
]

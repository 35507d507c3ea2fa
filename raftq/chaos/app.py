"""The task the real ``raftq worker`` runs in chaos scenarios (``--app chaos.app``).

``chaos.echo`` takes its own task id, "works" briefly, and appends an
``execute`` record to the file named by ``CHAOS_EXEC_LOG`` so the run can count
how often the real worker ran each task.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

from raftq.client.task import task


@task(name="chaos.echo")
def echo(task_id: str) -> dict[str, Any]:
    time.sleep(random.uniform(0.02, 0.15))
    path = os.environ.get("CHAOS_EXEC_LOG")
    if path:
        record = {"type": "execute", "task_id": task_id, "t": time.time() * 1000.0,
                  "worker": "raftq-worker", "pid": os.getpid()}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    return {"worker": "raftq-worker", "pid": os.getpid()}

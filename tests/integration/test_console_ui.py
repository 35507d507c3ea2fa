"""The web console in a real Chromium (Playwright driving Debian's ``chromium``).

Run by ``make test-ui`` (and by ``.ci/run``), which installs Playwright and
Chromium when missing and sets ``RAFTQ_UI=1``; plain ``make test`` skips this
module. Screenshots of each page go to ``RAFTQ_UI_ARTIFACTS`` (default
``ui-artifacts/``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clusterkit import http, wait_for
from workerkit import Workers, kill_cluster, new_cluster

from raftq import Client
from raftq.local.cluster import LocalCluster

if os.environ.get("RAFTQ_UI") != "1":
    pytest.skip("browser tests run with `make test-ui` (RAFTQ_UI=1)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("RAFTQ_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("RAFTQ_UI_ARTIFACTS", "ui-artifacts")).resolve()


@pytest.fixture(scope="module")
def ui_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = new_cluster(tmp_path_factory.mktemp("ui") / "cluster")
    yield cluster
    kill_cluster(cluster)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Console:
    """One signed-in tab on a node."""

    def __init__(self, browser: Any, url: str, key: str) -> None:
        self.url = url
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url + "/")
        self.page.fill("#key", key)
        self.page.click("#signin button")
        self.page.wait_for_selector("#signout")

    def go(self, path: str) -> Any:
        self.page.goto(self.url + path)
        self.page.wait_for_selector("#signout")
        return self.page

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def confirm(self) -> None:
        self.page.click("#confirm button.go")

    def close(self) -> None:
        assert not self.errors, self.errors
        self.context.close()


def dead_letter(client: Client, task_id: str, queue: str) -> None:
    client.submit("ui.fails", queue=queue, id=task_id, max_attempts=1)
    (leased,) = client.claim("ui-test", [queue], max=1)
    client.fail(leased["id"], leased["lease_token"],
                {"type": "ValueError", "message": f"{task_id} broke",
                 "traceback": "Traceback (most recent call last):\n  ...\nValueError"},
                retry=False)


def test_an_operator_finds_opens_and_acts(browser: Any, ui_cluster: LocalCluster,
                                          tmp_path: Path) -> None:
    urls = ui_cluster.http_urls
    client = Client(urls)
    ui = Console(browser, urls[0], os.environ["RAFTQ_API_KEY"])
    page = ui.page
    assert page.inner_text("#node-id") == "node1"
    page.wait_for_selector("#cluster tbody tr.you")
    ui.shot("overview")

    # A worker appears and the rates move.
    ui.go("/ui/workers")
    page.wait_for_selector("#workers tbody td.muted")  # "no worker seen"
    workers = Workers(tmp_path, urls)
    try:
        workers.start("--queues", "ui-work", "--concurrency", "4")
        for i in range(40):
            client.submit("record", args=[f"ui-{i}"], queue="ui-work")
        page.wait_for_selector("#workers tbody tr:has-text('ui-work'):has-text('active')",
                               timeout=30_000)
        ui.shot("workers")
        ui.go("/")
        for i in range(40, 80):
            client.submit("record", args=[f"ui-{i}"], queue="ui-work")
        wait_for(lambda: float(page.inner_text("[data-rate=succeeded]")) > 0, timeout=30,
                 what="the succeeded rate moving")
        wait_for(lambda: float(page.inner_text("[data-rate=submitted]")) > 0, timeout=30,
                 what="the submitted rate moving")
        ui.shot("overview-live")
    finally:
        workers.stop_all()

    # Find a task and open it.
    client.submit("ui.findme", queue="ui-find", id="ui-find-1", args=[1, "two"])
    ui.go("/ui/tasks")
    page.fill("#search [name=name]", "ui.findme")
    page.click("#search button[type=submit]")
    page.wait_for_selector("#tasks a:has-text('ui-find-1')")
    ui.shot("tasks")
    page.click("#tasks a:has-text('ui-find-1')")
    page.wait_for_selector("#task-id:has-text('ui-find-1')")
    assert '"two"' in page.inner_text("#args")
    page.wait_for_selector("#timeline td:has-text('submitted')")
    # Cancel it from its page.
    page.click("#cancel")
    ui.confirm()
    page.wait_for_selector("#task-status:has-text('cancelled')")
    ui.shot("task")

    # Search by tenant; retry a task in its hour-long backoff now, from its page.
    client.submit("ui.flaky", queue="ui-retry", id="ui-retry-1", tenant="ui-acme",
                  retry_backoff=3600)
    client.submit("ui.flaky", queue="ui-other", id="ui-other-1", tenant="ui-zeta")
    ui.go("/ui/tasks?tenant=ui-acme")
    page.wait_for_selector("#tasks a:has-text('ui-retry-1')")
    assert page.locator("#tasks a:has-text('ui-other-1')").count() == 0
    assert page.input_value("#search [name=tenant]") == "ui-acme"
    (leased,) = client.claim("ui-test", ["ui-retry"], max=1)
    client.fail("ui-retry-1", leased["lease_token"], "flaky", retry=True)
    ui.go("/ui/task?id=ui-retry-1")
    page.wait_for_selector("#task-status:has-text('scheduled')")
    page.click("#retry-now")
    ui.confirm()
    page.wait_for_selector("#task-status:has-text('queued')")
    assert page.locator("#retry-now").is_hidden()
    assert client.get("ui-retry-1")["attempts"] == 1

    # The list of workflows opens one's graph.
    status, _ = http(urls[0] + "/v1/workflows", "POST", {"id": "ui-wf", "tasks": [
        {"key": "fetch", "name": "ui.step", "queue": "ui-wf"},
        {"key": "store", "name": "ui.step", "queue": "ui-wf", "depends_on": ["fetch"]}]})
    assert status == 201
    ui.go("/ui/workflows?status=running")
    page.wait_for_selector("#workflows tr:has-text('ui-wf'):has-text('running')")
    ui.shot("workflows")
    page.click("#workflows a:has-text('ui-wf')")
    page.wait_for_selector("#flow td:has-text('store')")
    assert "/ui/workflow?id=ui-wf" in page.url
    ui.shot("workflow")

    # Requeue one dead letter.
    dead_letter(client, "ui-dead-1", "ui-dead")
    ui.go("/ui/task?id=ui-dead-1")
    page.wait_for_selector("#attempts td:has-text('ui-dead-1 broke')")
    ui.shot("task-dead")
    ui.go("/ui/dead-letters")
    page.check("input.pick[value='ui-dead-1']")
    ui.shot("dead-letters")
    page.click("#requeue-selected")
    ui.confirm()
    page.wait_for_selector("input.pick[value='ui-dead-1']", state="detached")
    assert client.get("ui-dead-1")["status"] == "queued"

    # Bulk purge, after a confirmation.
    for i in range(3):
        dead_letter(client, f"ui-purge-{i}", "ui-purge")
    ui.go("/ui/dead-letters?queue=ui-purge")
    page.wait_for_selector("input.pick[value='ui-purge-2']")
    page.check("#all")
    page.click("#purge-selected")
    assert "Purge 3 dead letters?" in page.inner_text("#confirm p")
    ui.confirm()
    page.wait_for_selector("#dead td:has-text('no dead letters')")
    assert client.dead_letters(queue="ui-purge") == []

    # Pause a queue, after a confirmation; and a schedule.
    client.submit("ui.held", queue="ui-pause", id="ui-held-1")
    ui.go("/ui/queues")
    page.click("button[data-queue=ui-pause]")
    ui.confirm()
    page.wait_for_selector("#queue-settings tr:has-text('ui-pause') :text('paused')")
    status, settings = http(urls[0] + "/v1/queues/ui-pause")
    assert status == 200 and settings["queue"]["paused"] is True
    ui.shot("queues")
    client.put_schedule("ui-sched", "ui.tick", every=3600)
    ui.go("/ui/schedules")
    page.click("button[data-do=pause][data-id=ui-sched]")
    page.wait_for_selector("button[data-do=resume][data-id=ui-sched]")
    assert client.schedule("ui-sched")["paused"] is True
    ui.shot("schedules")

    ui.go("/ui/audit")
    page.wait_for_selector("#audit td:has-text('requeue')")
    ui.shot("audit")
    ui.close()


def test_a_reader_key_is_offered_no_action(browser: Any, ui_cluster: LocalCluster) -> None:
    urls = ui_cluster.http_urls
    admin = os.environ["RAFTQ_API_KEY"]
    status, created = http(urls[1] + "/v1/keys", "POST", {"name": "ui-reader", "role": "reader"},
                           api_key=admin)
    assert status == 201
    client = Client(urls)
    dead_letter(client, "ui-reader-dead", "ui-reader")
    client.submit("ui.queued", queue="ui-reader", id="ui-reader-queued")
    ui = Console(browser, urls[1], created["token"])
    page = ui.page
    assert page.inner_text("#node-id") == "node2"
    assert "reader" in page.inner_text("#who")
    assert page.locator("nav a:has-text('Audit')").count() == 0
    ui.go("/ui/dead-letters")
    page.wait_for_selector("#dead a:has-text('ui-reader-dead')")
    for button in ("#requeue-selected", "#purge-selected", "#purge-all", "input.pick"):
        assert page.locator(button).count() == 0, button
    ui.go("/ui/queues")
    page.wait_for_selector("#queue-settings a:has-text('ui-reader')")
    assert page.locator("#queue-settings button").count() == 0
    ui.go("/ui/task?id=ui-reader-dead")
    page.wait_for_selector("#task-status:has-text('dead')")
    assert page.locator("#actions button").count() == 0
    ui.go("/ui/task?id=ui-reader-queued")
    page.wait_for_selector("#task-status:has-text('queued')")
    assert page.locator("#actions button").count() == 0
    ui.shot("reader-task")
    ui.close()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_page_weight_and_a_nodes_cost_with_10_browsers(
        browser: Any, ui_cluster: LocalCluster, tmp_path: Path) -> None:
    url = ui_cluster.http_urls[2]
    key = os.environ["RAFTQ_API_KEY"]
    # Page weight: what a first visit of the overview transfers, before any data: the
    # page and the files it links (read over HTTP: a browser's cache would hide some).
    sizes: dict[str, int] = {}
    with urllib.request.urlopen(url + "/") as resp:
        html = resp.read()
    sizes["/"] = len(html)
    for link in re.findall(rb'(?:src|href)="(/ui/static/[^"]+)"', html):
        with urllib.request.urlopen(url + link.decode()) as resp:
            sizes[link.decode()] = len(resp.read())
    weight = sum(sizes.values())
    assert weight < 60_000, sizes

    process = ui_cluster.nodes[2].process
    assert process is not None
    pid = process.pid
    client = Client([url])

    def load(seconds: float) -> float:
        """Node CPU seconds per second while 20 tasks/s are submitted."""
        start, cpu = time.monotonic(), _cpu_s(pid)
        n = 0
        while time.monotonic() - start < seconds:
            client.submit("ui.load", queue="ui-load", id=f"ui-load-{time.monotonic_ns()}-{n}")
            n += 1
            time.sleep(0.05)
        return (_cpu_s(pid) - cpu) / (time.monotonic() - start)

    idle = load(10)
    tabs = [Console(browser, url, key) for _ in range(10)]
    for tab in tabs:
        tab.page.wait_for_selector("#live.on")
    busy = load(10)
    for tab in tabs:
        tab.close()
    report = (f"console page weight {weight} bytes ({len(sizes)} files); node CPU "
              f"{idle:.3f} s/s without browsers, {busy:.3f} s/s with 10 on the overview "
              f"(+{busy - idle:.3f}), 20 tasks/s")
    print(report)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "cost.txt").write_text(report + "\n")
    assert busy - idle < 0.5

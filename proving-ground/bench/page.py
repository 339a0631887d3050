"""Item 11: the approval page and the pending list (issue 21).

* **Template engine cost**, the choice ``src/api/pages.py`` explains: in fresh python3.13 processes (``-B``, the
  modules compiled to bytecode first, as ``make build`` ships them), after the modules the api function imports
  anyway (``api.callbacks``, ``shared.registry``), the time to import the page module and render the approval page
  with the standard-library template (``api.pages``), against importing Jinja2 (with MarkupSafe) and rendering the
  same three template files, converted to Jinja syntax, with ``autoescape``.
* **Render time** of the approval page in the api function's code (``pages.page_for_record(...).html()``, in
  process), and a ``GET`` of the link through the local stack (gateway, api function, two DynamoDB reads).
* **The pending list's latency** on the local stack at 10 and 1,000 waiting workflows of one tenant: the first page
  (``limit=20``) and a walk through every page with ``limit=100``; each page is one DynamoDB ``Query``
  (``shared.registry.WorkflowRegistry.list_workflows``).
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

from bench import REPO_ROOT
from bench.stats import summary

SIZES = (10, 1000)
PAGE_TEMPLATES = REPO_ROOT / "src" / "api" / "templates"
_STDLIB = """
import sys, time
sys.path.insert(0, {tree!r})
import api.callbacks, shared.registry
from decimal import Decimal
started = time.perf_counter()
from api import pages
from shared.registry import WorkflowRecord
record = WorkflowRecord("tenant-a", "wf-1", "WAITING_FOR_CALLBACK", callback_deadline=2000000000,
                        request_summary={{"amount": Decimal("120"), "currency": "EUR", "description": "<b>x</b>"}})
html = pages.page_for_record(record, "Acme", 1900000000).html()
print(time.perf_counter() - started)
"""
_JINJA = """
import sys, time
sys.path.insert(0, {tree!r})
import api.callbacks, shared.registry
started = time.perf_counter()
import jinja2
env = jinja2.Environment(loader=jinja2.FileSystemLoader({jinja_dir!r}), autoescape=True)
main = env.get_template("approval.html").render(requester="Acme", amount="120 EUR", description="<b>x</b>",
                                                deadline_iso="2033-05-18T03:33:20Z", deadline_text="2033-05-18 03:33 UTC",
                                                max_comment=1000)
html = env.get_template("page.html").render(title="t", body=jinja2.utils.markupsafe.Markup(main))
print(time.perf_counter() - started)
"""


def runtime_python() -> str | None:
    """A python3.13 with Jinja2 to compare with: the repository's ``.venv-3.13`` (the unit suite's), else ``python3.13``."""
    venv = REPO_ROOT / ".venv-3.13" / "bin" / "python"
    return str(venv) if venv.exists() else shutil.which("python3.13")


def to_jinja(text: str) -> str:
    """A ``string.Template`` file in Jinja syntax: ``$name`` becomes ``{{ name }}``."""
    return re.sub(r"\$(\w+)", r"{{ \1 }}", text)


def template_cost(python: str, runs: int) -> dict[str, Any]:
    """Import + first render of the page, standard library against Jinja2, in fresh processes of ``python``."""
    site = subprocess.run([python, "-c", "import jinja2, os; print(os.path.dirname(os.path.dirname(jinja2.__file__)))"],
                          capture_output=True, text=True, check=False).stdout.strip()
    if not site:
        return {"skipped": f"{python} has no Jinja2 to compare with"}
    with tempfile.TemporaryDirectory(prefix="bench-page-") as work:
        tree, jinja_dir = Path(work) / "tree", Path(work) / "jinja"
        for package in ("api", "shared"):
            shutil.copytree(REPO_ROOT / "src" / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
        for package in ("jinja2", "markupsafe"):
            shutil.copytree(Path(site) / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
        jinja_dir.mkdir()
        for template in PAGE_TEMPLATES.glob("*.html"):
            (jinja_dir / template.name).write_text(to_jinja(template.read_text()))
        subprocess.run([python, "-m", "compileall", "-q", str(tree)], check=True)
        sides: dict[str, list[float]] = {"stdlib": [], "jinja2": []}
        for _ in range(runs):
            for side, code in (("stdlib", _STDLIB), ("jinja2", _JINJA)):
                out = subprocess.run([python, "-B", "-c", code.format(tree=str(tree), jinja_dir=str(jinja_dir))],
                                     capture_output=True, text=True, check=True).stdout
                sides[side].append(float(out) * 1000)
        jinja_bytes = sum(f.stat().st_size for package in ("jinja2", "markupsafe")
                          for f in (tree / package).rglob("*") if f.is_file())
    return {"python": python, "runs": runs, "stdlibMs": summary(sides["stdlib"]), "jinja2Ms": summary(sides["jinja2"]),
            "jinja2PackageBytes": jinja_bytes}


def render_time(renders: int = 2000) -> dict[str, Any]:
    """The approval page's render in the api function's code, in this process (µs per render)."""
    from api import pages
    from shared.registry import WorkflowRecord

    record = WorkflowRecord("tenant-a", "wf-1", "WAITING_FOR_CALLBACK", callback_deadline=2_000_000_000,
                            request_summary={"amount": Decimal("120"), "currency": "EUR",
                                             "description": "<script>alert(1)</script>" * 8})
    timings = []
    for _ in range(renders):
        started = time.perf_counter()
        pages.page_for_record(record, "Acme Payments", 1_900_000_000).html()
        timings.append((time.perf_counter() - started) * 1e6)
    return {"renders": renders, "renderUs": summary(timings), "bytes": len(pages.page_for_record(
        record, "Acme Payments", 1_900_000_000).html().encode())}


def _table(stack: Any) -> Any:
    return boto3.resource("dynamodb", endpoint_url=stack.dynamodb_url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local").Table("tenant-durable-workflows")


def _seed(stack: Any, tenant_id: str, count: int) -> None:
    """``count`` waiting workflows of ``tenant_id`` written as the workflow function writes them (the registry's own
    methods), each with the token hash of its current token, so a listing hands out URLs without writing."""
    from local.services.notifications import SIGNING_KEY_FILE
    from shared.callback_tokens import mint_token, token_hash
    from shared.registry import WorkflowRegistry

    key = (stack.state_dir / SIGNING_KEY_FILE).read_text().strip().encode()
    registry = WorkflowRegistry(_table(stack), 86_400)
    for number in range(count):
        workflow_id, callback_id = f"bench-{number:05d}", f"bench-cb-{tenant_id}-{number}"
        registry.claim_workflow(tenant_id, workflow_id, f"arn:bench:{workflow_id}", {"amount": 1, "currency": "EUR"})
        registry.register_callback(tenant_id, workflow_id, callback_id, 3600,
                                   token_hash=token_hash(mint_token(key, tenant_id, callback_id)))
        registry.mark_waiting(tenant_id, workflow_id, callback_id)


def list_latency(stack: Any, tenant_id: str, count: int, repeats: int) -> dict[str, Any]:
    """First page (limit 20) and a walk through every page (limit 100) of ``tenant_id``'s ``count`` waiting workflows."""
    url, headers = f"{stack.api_url}/workflows", stack.headers(tenant_id)
    first, walks, pages_per_walk = [], [], 0
    for _ in range(repeats * 10):
        started = time.perf_counter()
        response = stack.http.get(url, params={"status": "WAITING_FOR_CALLBACK", "limit": "20"}, headers=headers,
                                  timeout=60)
        first.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and len(response.json()["workflows"]) == min(20, count), response.text
    for _ in range(repeats):
        params: dict[str, str] = {"status": "WAITING_FOR_CALLBACK", "limit": "100"}
        seen, pages_per_walk, started = 0, 0, time.perf_counter()
        while True:
            body = stack.http.get(url, params=params, headers=headers, timeout=60).json()
            seen, pages_per_walk = seen + len(body["workflows"]), pages_per_walk + 1
            if "nextToken" not in body:
                break
            params["nextToken"] = body["nextToken"]
        walks.append((time.perf_counter() - started) * 1000)
        assert seen == count, (seen, count)
    # The page's one Query alone, as the api function makes it, straight to the local DynamoDB (moto): what it
    # costs there, and how many items it read (ScannedCount: DynamoDB reads only the page, whatever the partition holds).
    from shared.registry import list_index

    index, attribute, value = list_index(tenant_id, "WAITING_FOR_CALLBACK")
    table, queries, scanned = _table(stack), [], set()
    for _ in range(repeats * 10):
        started = time.perf_counter()
        page = table.query(IndexName=index, KeyConditionExpression="#p = :p", ExpressionAttributeNames={"#p": attribute},
                           ExpressionAttributeValues={":p": value}, ScanIndexForward=False, Limit=20)
        queries.append((time.perf_counter() - started) * 1000)
        scanned.add(int(page["ScannedCount"]))
    return {"waiting": count, "firstPageMs": summary(first), "walkMs": summary(walks), "pagesPerWalk": pages_per_walk,
            "perPageMs": statistics.median(walks) / pages_per_walk, "queryMs": summary(queries),
            "scannedPerQuery": max(scanned)}


def measure(stack_in_workdir: Callable[[str, list[str]], Any], python: str | None, repeats: int, runs: int,
            progress: Callable[[str], None]) -> dict[str, Any]:
    """Item 11's figures: template cost (python3.13), render time, a GET of the link, the list at each size."""
    results: dict[str, Any] = {"render": render_time()}
    progress(f"  render {results['render']['renderUs']['median']:.0f} µs in process")
    results["templates"] = template_cost(python, runs) if python else {"skipped": "no python3.13"}
    if "stdlibMs" in results["templates"]:
        progress(f"  import + first render: stdlib {results['templates']['stdlibMs']['median']:.1f} ms, "
                 f"Jinja2 {results['templates']['jinja2Ms']['median']:.1f} ms")
    with stack_in_workdir("page", ["--snapshot-interval", "0"]) as stack:
        workflow_id = stack.start_workflow("tenant-a", {"amount": 120, "currency": "EUR", "description": "bench"})
        link = stack.wait_for_status("tenant-a", workflow_id, "WAITING_FOR_CALLBACK")["callbackUrl"]
        gets = []
        for _ in range(repeats * 20):
            started = time.perf_counter()
            assert stack.http.get(link, timeout=60).status_code == 200
            gets.append((time.perf_counter() - started) * 1000)
        results["getMs"] = summary(gets)
        results["lists"] = []
        for count in SIZES:
            tenant_id = f"tenant-bench-list-{count}"
            stack.put_tenant({"tenantId": tenant_id, "displayName": f"Bench {count}", "status": "ACTIVE",
                              "allowedCurrencies": ["EUR"], "maxAmount": 100, "callbackTimeoutSeconds": 3600},
                             api_key=f"bench-list-key-{count}")
            _seed(stack, tenant_id, count)
            results["lists"].append(list_latency(stack, tenant_id, count, repeats))
            row = results["lists"][-1]
            progress(f"  {count} waiting: first page {row['firstPageMs']['median']:.1f} ms, all {row['pagesPerWalk']} "
                     f"pages {row['walkMs']['median']:.0f} ms ({row['perPageMs']:.1f} ms a page)")
    return results

"""Load a UI workflow into ComfyUI's web frontend in headless Chromium and report problems.

Run by tests/test_comfyui_live.py with ComfyUI's interpreter (it has aiohttp):
    python comfy_frontend_check.py BASE_URL WORKFLOW.json SCREENSHOT.png
Prints one JSON object: node types the frontend does not know, nodes flagged with errors,
widgets whose value differs from the workflow file, console errors, and the node count.
Chromium talks only to 127.0.0.1 (DevTools protocol on a local port).
"""
from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import aiohttp

FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1800,1100"]
# Logged by the frontend itself whenever a workflow replaces the start graph (also with a lone Note).
FRONTEND_NOISE = ("Attempted to cleanup event listeners for graph that was never set up",)
CHECK_JS = """(() => {
  const app = window.app || (window.comfyAPI && window.comfyAPI.app && window.comfyAPI.app.app);
  const graph = app.graph;
  const known = LiteGraph.registered_node_types;
  const nodes = graph._nodes || graph.nodes;
  return JSON.stringify({
    count: nodes.length,
    unknown: nodes.filter(n => !(n.type in known)).map(n => n.type),
    flagged: nodes.filter(n => n.has_errors).map(n => n.type),
    widgets: nodes.filter(n => n.widgets).map(n => [n.id, n.type, n.widgets.map(w => w.value)]),
  });
})()"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _check(base: str, workflow: dict, screenshot: str) -> dict:
    port, profile = _port(), tempfile.mkdtemp(prefix="echovideo-chromium-")
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    process = subprocess.Popen([browser, *FLAGS, f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
                                f"--user-data-dir={profile}", "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    targets = await (await session.get(f"http://127.0.0.1:{port}/json")).json()
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.2)
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                return await _drive(ws, base, workflow, screenshot)
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)


async def _drive(ws, base: str, workflow: dict, screenshot: str) -> dict:
    counter, errors = [0], []

    async def call(method: str, **params):
        counter[0] += 1
        await ws.send_json({"id": counter[0], "method": method, "params": params})
        while True:
            message = json.loads((await ws.receive()).data)
            if message.get("method") == "Runtime.consoleAPICalled" and message["params"]["type"] == "error":
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in message["params"]["args"]))
            if message.get("id") == counter[0]:
                return message.get("result", {})

    async def evaluate(expression: str):
        result = await call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    await call("Runtime.enable")
    await call("Page.enable")
    await call("Page.navigate", url=base)
    deadline = time.time() + 120
    while not await evaluate("!!((window.app || (window.comfyAPI && window.comfyAPI.app)) && window.LiteGraph)"):
        if time.time() > deadline:
            raise TimeoutError("the ComfyUI frontend did not load")
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)
    errors.clear()  # only errors caused by loading the workflow count
    app = "(window.app || window.comfyAPI.app.app)"
    # The frontend may still be restoring its start graph (a busy machine): load again until
    # the graph holds the workflow's nodes, for at most 60 s.
    deadline = time.time() + 60
    while True:
        await evaluate(f"{app}.loadGraphData({json.dumps(workflow)}).then(() => true)")
        await asyncio.sleep(3)
        report = json.loads(await evaluate(CHECK_JS))
        if report["count"] == len(workflow["nodes"]) or time.time() > deadline:
            break
    await asyncio.sleep(2)  # let the canvas finish drawing before the picture
    shot = await call("Page.captureScreenshot", format="png")
    with open(screenshot, "wb") as handle:
        handle.write(base64.b64decode(shot["data"]))
    report["console_errors"] = [e for e in errors if not e.startswith(FRONTEND_NOISE)]
    return report


def widget_mismatches(workflow: dict, report: dict) -> list[str]:
    """Nodes whose widget values in the frontend differ from the workflow file."""
    saved = {n["id"]: n.get("widgets_values", []) for n in workflow["nodes"]}
    problems = []
    for node_id, node_type, values in report["widgets"]:
        expected = saved.get(node_id, [])
        if node_type != "Note" and [v for v in values if v is not None][: len(expected)] != expected[: len(values)]:
            problems.append(f"{node_type} #{node_id}: frontend {values} vs file {expected}")
    return problems


if __name__ == "__main__":
    base_url, workflow_path, screenshot_path = sys.argv[1:4]
    graph = json.loads(open(workflow_path).read())
    result = asyncio.run(_check(base_url, graph, screenshot_path))
    result["widget_mismatches"] = widget_mismatches(graph, result)
    del result["widgets"]
    print(json.dumps(result))

"""Runs the README's "Quickstart in 5 minutes" as written (issue 20), so the README cannot drift.

The commands are extracted from the section's ```sh blocks, in order, and run like one terminal
session (``cd`` and ``export``/``.`` carry over) in a fresh directory holding a copy of
``examples/``, with this checkout's .venv first on PATH (the install step, marked
``<!-- quickstart-test: skip -->``, is not run). A command ending in ``# leave it running`` is
started in the background and awaited until its output shows the ```text block that follows.
A ```text block after any other command is what it must print: each of its lines must match an
output line, word by word in order (spacing and box drawing aside; ``…`` ends a word early: what
varies); a read is retried until it does (events take a moment to arrive).

The one change: the default addresses 127.0.0.1:4317/4318/8318/8000 become free ports, in the
commands, in the expected output, and in the files ``otel-audit init`` wrote; the example app
gets ``--port``. Nothing else is rewritten.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import REPO, free_port

SECTION = "## Quickstart in 5 minutes"
BACKGROUND = "# leave it running"
DEFAULT_PORTS = (4317, 4318, 8318, 8000)
_BLOCK = re.compile(r"(<!-- quickstart-test: skip[^>]*-->\s*)?```(\w+)\n(.*?)```", re.S)
_BOX = set("│┃━─┡┩╇┳┻┏┓┗┛└┘┴┬┼╋═")


@dataclass
class Step:
    command: str
    background: bool
    expected: list[str] = field(default_factory=list)


def quickstart_steps(readme: str) -> list[Step]:
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    steps: list[Step] = []
    for match in _BLOCK.finditer(section):
        skip, language, body = match.groups()
        if skip:
            continue
        if language == "sh":
            for line in body.splitlines():
                if line.strip():
                    background = line.rstrip().endswith(BACKGROUND)
                    command = line.rstrip().removesuffix(BACKGROUND).rstrip() if background else line
                    steps.append(Step(command, background))
        elif language == "text":
            steps[-1].expected += [line for line in body.splitlines() if line.strip()]
    return steps


def words(lines: list[str]) -> list[str]:
    """The words output must contain: box drawing dropped, a word cut at ``…``."""
    out: list[str] = []
    for line in lines:
        for word in line.split():
            word = word.split("…", 1)[0]
            if word and not set(word) <= _BOX:
                out.append(word)
    return out


def missing(expected: list[str], output: str) -> list[str]:
    """The expected lines no output line matches: its words, in order, within one line."""
    lines = output.splitlines()

    def found(line: str) -> bool:
        for candidate in lines:
            at = 0
            for word in words([line]):
                at = candidate.find(word, at)
                if at < 0:
                    break
                at += len(word)
            else:
                return True
        return False

    return [line for line in expected if not found(line)]


class Session:
    """One terminal: environment and working directory carry over between commands."""

    def __init__(self, root: Path, ports: dict[int, int]) -> None:
        self.root = root
        self.cwd = root
        self.ports = ports
        home = root / "home"
        home.mkdir()
        self.env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(home),
            "COLUMNS": "200",
            "LANG": "C.UTF-8",
        }
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []

    def substitute(self, text: str) -> str:
        for default, port in self.ports.items():
            text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
        return text

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        state = self.root / ".session"
        script = f'{command}\nrc=$?\npwd > "{state}.pwd"\nenv -0 > "{state}.env"\nexit $rc\n'
        done = subprocess.run(
            ["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=300
        )
        self.cwd = Path((state.with_suffix(".pwd")).read_text().strip())
        pairs = (
            item.split("=", 1) for item in state.with_suffix(".env").read_text().split("\0") if "=" in item
        )
        self.env = {k: v for k, v in pairs if not k.startswith("BASH_FUNC")}
        return done

    def start(self, command: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.root / f".background-{len(self.background)}.log"
        handle = open(log, "wb")  # noqa: SIM115 - the process owns it
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}" if "&&" not in command else command],
            cwd=self.cwd,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        self.background.append((proc, log))
        return proc, log

    def stop_all(self) -> list[tuple[int | None, str]]:
        results = []
        for proc, log in reversed(self.background):  # the app before the receiver
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            results.append((proc.returncode, log.read_text(errors="replace")))
        return results


def test_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    steps = quickstart_steps((REPO / "README.md").read_text(encoding="utf-8"))
    assert [s.command.split()[0] for s in steps][:2] == ["otel-audit", "cd"], steps  # init, then serve
    assert any(s.background for s in steps) and any("verify" in s.command for s in steps)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    session = Session(tmp_path, {p: free_port() for p in DEFAULT_PORTS})
    transcript: list[str] = []
    try:
        for step in steps:
            command = session.substitute(step.command)
            expected = [session.substitute(line) for line in step.expected]
            if "examples/quickstart_app.py" in command:
                command += f" --port {session.ports[8000]}"
            transcript.append(f"$ {command}")
            if step.background:
                proc, log = session.start(command)
                deadline = time.monotonic() + 180
                while missing(expected, log.read_text(errors="replace")):
                    assert proc.poll() is None, f"{command} exited {proc.returncode}:\n{log.read_text()}"
                    assert time.monotonic() < deadline, f"{command}: no {missing(expected, log.read_text())}"
                    time.sleep(0.2)
                continue
            deadline = time.monotonic() + 60
            while True:
                done = session.run(command)
                output = done.stdout + done.stderr
                if done.returncode == 0 and not missing(expected, output):
                    break
                assert time.monotonic() < deadline, (
                    f"{command}: exit {done.returncode}, missing {missing(expected, output)}\n{output}\n"
                    + "\n".join(transcript)
                )
                time.sleep(1)
            transcript.append(output)
            if command.startswith("otel-audit init"):
                audit = session.cwd / command.split()[2]
                for name in ("otel-audit.yaml", "app.env"):
                    path = audit / name
                    path.write_text(session.substitute(path.read_text()))
    finally:
        stopped = session.stop_all()
    app, serve = stopped  # the app stops first
    assert app[0] in (0, -signal.SIGTERM), app[1]  # uvicorn re-raises the signal once it has shut down
    assert serve[0] == 0, serve[1]  # serve drains and exits 0 on SIGTERM
    csv = (session.cwd / "patients.csv").read_text()
    assert csv.count("\n") == 4 and '""ward"":{""new"":""B"",""old"":""A""}' in csv

"""Every shell example in README.md and docs/walkthroughs.md runs, against a served app, so none can rot.

A fenced ```bash, ```sh or ```console block is either run here (or by tests/docs/test_readme_tour.py,
which owns README's "Quick start" and "The full loop, by hand") or carries, on the line before its fence, an
HTML comment `<!-- not-executed: why -->`; nothing else is allowed. The blocks run as a reader runs them: one
`xinyi up` on the demo city (on PostgreSQL and Redis when the suite uses them: a throwaway database and a
Redis namespace of its own), then in one bash, in the folder the server runs in, the `export` lines it printed,
the quick start's second block (which takes the tokens the walkthroughs use) and each block in document
order, unchanged except for the simulated services' fixed ports (free ones instead). Each block must exit 0
under `set -euo pipefail`, and every curl in it must get a 2xx: an example whose request is refused is as
wrong as one that does not run (`curl` is a function that adds `--fail-with-body`, unless the example
already says `-f`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.test_readme_tour import FULL_LOOP, QUICK_START, section
from tests.servers import free_port, throwaway_database, xinyi_up

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "walkthroughs.md")
SHELLS = ("bash", "sh", "console")
NOT_EXECUTED = re.compile(r"^<!--\s*not-executed:\s*(\S.*?)\s*-->$")
# The simulated bank's and peer city's default ports, which the examples name: a free port each in the test.
FIXED_PORTS = ("9001", "9002")
# Fails the script on a refused request; an example's own `-f` (a readiness poll) is left alone.
CURL_FAILS = """curl() {
  case " $* " in
    *" -f "*|*" -sf "*|*" -fs "*|*" --fail "*) command curl "$@" ;;
    *) command curl --fail-with-body "$@" ;;
  esac
}"""


@dataclass(frozen=True)
class Block:
    document: str
    line: int  # of the opening fence, 1-based
    heading: str  # the `## ` section the block is in
    body: str
    not_executed: str | None  # the reason given, if it is marked

    @property
    def name(self) -> str:
        return f"{self.document}:{self.line}"

    def commands(self, language: str) -> str:
        if language != "console":
            return self.body
        # A console transcript: `$ ` lines are commands (with their `\\` continuations), the rest is output.
        lines, continuing = [], False
        for line in self.body.splitlines():
            if line.startswith("$ ") or continuing:
                lines.append(line[2:] if line.startswith("$ ") and not continuing else line)
                continuing = line.endswith("\\")
        return "\n".join(lines) + "\n"


FENCE = re.compile(r"^```(\w*)\s*$")


def shell_blocks(path: Path) -> list[tuple[str, Block]]:
    """Every shell block of the document, with its language."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[tuple[str, Block]] = []
    heading, at = "", 0
    while at < len(lines):
        line = lines[at]
        if line.startswith("## "):
            heading = line
        opened = FENCE.match(line)
        if not opened:
            at += 1
            continue
        end = next(i for i in range(at + 1, len(lines)) if lines[i].startswith("```"))
        if opened.group(1) in SHELLS:
            before = next((lines[i] for i in range(at - 1, -1, -1) if lines[i].strip()), "")
            marked = NOT_EXECUTED.match(before.strip())
            blocks.append((opened.group(1), Block(document=str(path.relative_to(ROOT)), line=at + 1, heading=heading,
                                                  body="\n".join(lines[at + 1:end]) + "\n",
                                                  not_executed=marked.group(1) if marked else None)))
        at = end + 1
    return blocks


def owned_by_the_tour(block: Block) -> bool:
    """README's quick start and full loop run in tests/docs/test_readme_tour.py."""
    return block.document == "README.md" and block.heading in (QUICK_START, FULL_LOOP)


def blocks_to_run() -> list[tuple[str, Block]]:
    return [(language, block) for path in DOCUMENTS for language, block in shell_blocks(path)
            if block.not_executed is None and not owned_by_the_tour(block)]


def test_every_shell_block_is_run_or_says_why_not() -> None:
    seen = [block for path in DOCUMENTS for _, block in shell_blocks(path)]
    assert seen, "no shell blocks found: has the fence syntax changed?"
    for block in seen:
        if block.not_executed is not None:
            assert len(block.not_executed) > 10, f"{block.name}: say why the block is not executed"
    tour = [block for block in seen if owned_by_the_tour(block) and block.not_executed is None]
    # test_readme_tour.py runs the quick start's second block and the full loop's only block.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(tour) == 2, [block.name for block in tour]
    assert {block.body for block in tour} <= set(re.findall(r"^```bash\n(.*?)^```$", section(readme, QUICK_START)
                                                            + section(readme, FULL_LOOP), flags=re.S | re.M))


def _backends(workdir: Path, database_url: str | None) -> dict[str, str]:
    """The server's (and the examples') environment: the suite's backends, else the embedded default."""
    drop = ("DATABASE_URL", "REDIS_URL", "XINYI_REDIS_NAMESPACE", "XINYI_SQLITE_PATH", "XINYI_SMS_ADAPTER",
            "XINYI_BACKGROUND_IN_APP", "XINYI_TRUST_FORWARDED_FOR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"XINYI_ENV": "dev", "XINYI_LOG_LEVEL": "WARNING", "XINYI_WEBHOOK_ALLOW_LOOPBACK": "1",
                "XINYI_BACKGROUND_INTERVAL_SECONDS": "2", "XINYI_SQLITE_PATH": str(workdir / "xinyi.sqlite")})
    if database_url:
        env["DATABASE_URL"] = database_url
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
        env["XINYI_REDIS_NAMESPACE"] = f"xinyi-docs-{secrets.token_hex(4)}"
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], str]]:
    """`xinyi up` on the demo city; yields the reader's folder, the environment and what the server printed."""
    workdir = tmp_path_factory.mktemp("shell-examples")
    (workdir / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    port = free_port()
    with throwaway_database("xinyi_docs") as database_url:
        env = _backends(workdir, database_url)
        env["XINYI_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        with xinyi_up([], env=env, workdir=workdir, port=port) as (_, printed):
            yield workdir, env, printed


def test_every_unmarked_shell_block_runs(served: tuple[Path, dict[str, str], str]) -> None:
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"{tool} is needed to run the documents' examples (.ci/tools.sh installs it)"
    workdir, env, printed = served
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    take_tokens = re.findall(r"^```bash\n(.*?)^```$", section(readme, QUICK_START), flags=re.S | re.M)[1]
    blocks = blocks_to_run()
    assert blocks, "nothing to run"
    ports = {fixed: str(free_port()) for fixed in FIXED_PORTS}
    script = ["set -euo pipefail", CURL_FAILS,
              *(line for line in printed.splitlines() if line.startswith("export ")), take_tokens]
    for number, (language, block) in enumerate(blocks):
        commands = block.commands(language)
        for fixed, free in ports.items():
            commands = re.sub(rf"\b{fixed}\b", free, commands)
        script += [f"printf '\\n::block {number}::\\n'", commands]
    script.append("printf '\\n::done::\\n'")
    process = subprocess.Popen([str(shutil.which("bash")), "-c", "\n".join(script)], cwd=workdir, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):  # a simulated service an example left running
            os.killpg(process.pid, signal.SIGKILL)
    started = re.findall(r"^::block (\d+)::$", output, flags=re.M)
    failed = blocks[int(started[-1])][1].name if started else "the quick start's token block"
    assert process.returncode == 0, f"{failed} failed (exit {process.returncode}):\n{output[-4000:]}"
    assert output.rstrip().endswith("::done::"), f"{failed} stopped the script:\n{output[-4000:]}"
    assert len(started) == len(blocks), f"only {len(started)} of {len(blocks)} blocks ran"

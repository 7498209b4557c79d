"""The wheel a release would publish: built with `python -m build`, its metadata in current form."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from tests.fakes import REPO


def test_the_wheel_builds_cleanly_with_current_metadata(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Deprecat" not in output, "the build warns of something that will stop working"
    [wheel] = tmp_path.glob("neuron_exporter-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.10"
    assert "Programming Language :: Python :: 3.10" in metadata.get_all("Classifier")
    assert "neuron-exporter = exporter.cli:main" in scripts
    assert "exporter/sources/kubelet/podresources_pb2.py" in names
    assert not any(n.startswith(("tests/", "dashboards/", "alerts/", "bench/")) for n in names)

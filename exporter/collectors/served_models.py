"""Which model each Neuron runtime serves, from its process's command line (exporter/sources/processes.py).

    neuron_runtime_served_model_info{model="resnet",model_instance="resnet_0_0",model_version="1",pid="4242",runtime_tag="4242",server="triton"} 1
    neuron_exporter_process_inspection_failures 0

Read when a report is rendered (once per report), so a process that exits loses its labels with the
next report. Together with the pod that owns the runtime's cores, this is what prices a model:
recording rules split the pod's cost among the models its runtimes serve.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.state import State
from exporter.sources.processes import ServedModel, Unreadable, served_model


class ServedModelsCollector(Collector):
    """The model, version and instance each runtime process serves (Triton Python-backend stubs)."""

    name = "served_models"
    description = "the model each runtime process serves, from /proc/<pid>/cmdline (Triton stubs)"
    specs = (
        MetricSpec(
            "neuron_runtime_served_model_info",
            "info",
            "The model a runtime process serves, from its command line (a Triton Python-backend stub's "
            "model path and instance name); always 1.",
            ("model", "model_instance", "model_version", "pid", "runtime_tag", "server"),
            "neuron_runtime_data[].pid + /proc/<pid>/cmdline",
        ),
        MetricSpec(
            "neuron_exporter_process_inspection_failures",
            "gauge",
            "Runtime processes of the last report whose command line could not be read (not counted: "
            "processes that are gone, or that serve no model the exporter recognises).",
            (),
            "/proc/<pid>/cmdline",
        ),
    )
    attributed = False

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """One info series per runtime process serving a recognised model."""
        info = families["neuron_runtime_served_model_info"]
        failures = 0
        for runtime in state.sorted_runtimes():
            for pid in sorted(p for p in runtime.processes if p is not None):
                found = served_model(pid, self.options.procfs)
                if isinstance(found, Unreadable):
                    failures += 1
                elif isinstance(found, ServedModel):
                    info.add(
                        {
                            "model": found.model,
                            "model_instance": found.instance,
                            "model_version": found.version,
                            "pid": str(pid),
                            "runtime_tag": runtime.tag,
                            "server": found.server,
                        },
                        1,
                    )
        families["neuron_exporter_process_inspection_failures"].add({}, failures)

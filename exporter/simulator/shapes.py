"""The instance shapes the simulator can play: one table entry per EC2 instance type."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Shape:
    """What neuron-monitor would see on one instance type (SCHEMA.md §5.1, §5.2)."""

    name: str
    device_type: str
    """`neuron_hardware_info.neuron_device_type`."""
    device_version: str
    """`neuron_hardware_info.neuron_device_version` (deprecated upstream, still printed on trn2)."""
    neuroncore_version: str
    device_count: int
    cores_per_device: int
    """Cores per device as neuron-monitor reports them: logical cores when `lnc` > 1."""
    lnc: int
    """`logical_neuroncore_config`: physical cores behind one logical core."""
    device_memory_bytes: int
    vcpus: int
    host_memory_bytes: int
    """Nominal instance memory (the EC2 spec sheet)."""
    memtotal_bytes: int
    """What the kernel reports as MemTotal, which is always a bit below the nominal size."""
    peak_flops_per_core: float | None
    """Dense BF16 peak per (logical) core; None where neuron-monitor prints no `flops` (inf1)."""
    physical_key: str | None
    """Key of the per-physical-core breakdown inside a logical core (`v3d` on trn2), None without LNC."""
    physical_prefix: str
    """Prefix of the physical core names inside `physical_key` (`nc_v3.<global physical index>`)."""
    latency_s: float
    """Typical execution latency of a model on this hardware; runtimes scatter around it."""

    @property
    def cores(self) -> int:
        """Logical NeuronCores on the instance (the indices used in every per-core object)."""
        return self.device_count * self.cores_per_device


def _memtotal(nominal: int) -> int:
    # The kernel keeps ~3.6 % for itself on these instances (trn1.2xlarge: 32 GiB -> 33117732864).
    return int(nominal * 0.9638) // 4096 * 4096


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape(
            name="inf1.xlarge",
            device_type="inferentia",
            device_version="v1",
            neuroncore_version="v1",
            device_count=1,
            cores_per_device=4,
            lnc=1,
            device_memory_bytes=8 * GIB,
            vcpus=4,
            host_memory_bytes=8 * GIB,
            memtotal_bytes=8033951744,  # as in the real inf1.xlarge capture
            peak_flops_per_core=None,
            physical_key=None,
            physical_prefix="",
            latency_s=3.3e-3,
        ),
        Shape(
            name="inf2.48xlarge",
            device_type="inferentia2",
            # Chip generations in launch order: Inferentia v1, Trainium v2, Inferentia2 v3, Trainium2 v4.
            device_version="v3",
            neuroncore_version="v2",
            device_count=12,
            cores_per_device=2,
            lnc=1,
            device_memory_bytes=32 * GIB,
            vcpus=192,
            host_memory_bytes=768 * GIB,
            memtotal_bytes=_memtotal(768 * GIB),
            peak_flops_per_core=95e12,
            physical_key=None,
            physical_prefix="",
            latency_s=8e-3,
        ),
        Shape(
            name="trn1.2xlarge",
            device_type="trainium",
            device_version="v2",
            neuroncore_version="v2",
            device_count=1,
            cores_per_device=2,
            lnc=1,
            device_memory_bytes=32 * GIB,
            vcpus=8,
            host_memory_bytes=32 * GIB,
            memtotal_bytes=33117732864,  # as in the real trn1.2xlarge capture
            peak_flops_per_core=95e12,
            physical_key=None,
            physical_prefix="",
            latency_s=2e-3,
        ),
        Shape(
            name="trn1.32xlarge",
            device_type="trainium",
            device_version="v2",
            neuroncore_version="v2",
            device_count=16,
            cores_per_device=2,
            lnc=1,
            device_memory_bytes=32 * GIB,
            vcpus=128,
            host_memory_bytes=512 * GIB,
            memtotal_bytes=_memtotal(512 * GIB),
            peak_flops_per_core=95e12,
            physical_key=None,
            physical_prefix="",
            latency_s=12e-3,
        ),
        Shape(
            name="trn2.48xlarge",
            device_type="trainium2",
            device_version="v4",
            neuroncore_version="v3d",
            device_count=16,
            cores_per_device=4,
            lnc=2,
            device_memory_bytes=96 * GIB,
            vcpus=192,
            host_memory_bytes=2048 * GIB,
            memtotal_bytes=_memtotal(2048 * GIB),
            peak_flops_per_core=167e12,
            physical_key="v3d",
            physical_prefix="nc_v3",
            latency_s=20e-3,
        ),
    )
}

DEFAULT_SHAPE = "trn2.48xlarge"

"""Fuzzing the whole ingest path: mutated real neuron-monitor reports in, a parsable exposition out.

The issue's requirement: whatever neuron-monitor (or a corrupted pipe) writes, no exception escapes
Ingestor.on_line or the render, and /metrics always parses back with prometheus_client's parsers.
The inputs start from real report lines (AWS's documentation samples, captures from real nodes, a
simulated trn node), so that mutations land next to the shapes the validators really see, and
hypothesis then breaks them two ways: structurally, on the decoded document (values replaced by
arbitrary JSON, keys deleted, renamed or added, runtimes duplicated, values nested deep), and byte by
byte, on the encoded line (truncation, flipped bytes, NaN/Infinity/1e999 tokens, non-object top
levels, garbage). Each example feeds a sequence of such lines to one App, so the state carried from
report to report (runtimes coming and going, counter totals) is fuzzed too, in every naming mode.

After every line both formats must parse, and hold what Prometheus would otherwise reject or
mis-read: no family declared twice, no sample name in two families, no series twice, no counter
lower than before, no collector failing on validated data; and every line is either a report or a
counted bad line. The daemon runs with Python's default recursion limit, and so does each example.

Runs are derandomized and keep no example database, so CI sees the same examples every time.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.app import App
from exporter.cli import build_parser, settings_from_args
from tests.test_golden import FIXTURES, VARIANTS

REPORTS = FIXTURES / "reports"
SEEDS = (
    "real__inf1.xlarge_2023-02_with-runtime.jsonl",
    "real__inf1.xlarge_2023-02_no-runtime.jsonl",
    "real__wandb-test_trainium-MOCK_DATA_trn1.2xlarge.jsonl",
    "sim-trn1.2xlarge.jsonl",
    "docs-current__02-output-structure.jsonl",
    "docs-current__05-neuron_k8s_info.jsonl",
    "docs-current__07-neuroncore_counters.jsonl",
    "docs-current__08-execution_stats.jsonl",
    "docs-current__09-memory_used.jsonl",
    "docs-current__11-neuron_hw_counters.jsonl",
    "docs-current__12-vcpu_usage.jsonl",
    "docs-current__13-memory_info.jsonl",
    "docs-2020-09-17_as-released-2020-09-22__06-inference_stats.jsonl",
    "docs-2020-09-17_as-released-2020-09-22__07-memory_used.jsonl",
    "docs-2024-12-03_neuron-2.21.0-beta__04-neuron_hardware_info.jsonl",
)
"""Small and medium seeds: every metric group, Neuron 1.x and beta spellings, real and simulated nodes."""

LARGE_SEED = "sim-trn1.32xlarge.jsonl"
"""A 32-core trn1 node with several runtimes (50 kB lines); fuzzed on its own, with fewer examples."""

OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0"


def seed_lines(*names: str) -> tuple[bytes, ...]:
    """Every report line of the named fixtures."""
    return tuple(line for name in names for line in (REPORTS / name).read_bytes().splitlines() if line)


def all_keys(doc: Any) -> set[str]:
    """Every object key anywhere in a document."""
    keys: set[str] = set()
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            keys.update(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return keys


SEED_LINES = seed_lines(*SEEDS)
LARGE_LINES = seed_lines(LARGE_SEED)
KNOWN_KEYS = sorted(set().union(*(all_keys(orjson.loads(line)) for line in SEED_LINES + LARGE_LINES)))
"""Keys the real reports use: renamed and added keys are drawn from these so they hit schema fields."""

# --- JSON values -----------------------------------------------------------------------------------

NUMBERS = st.sampled_from(
    [0, -0.0, -1, 1, 100, 101.5, 2**63 - 1, 2**64, -(2**63) - 1, 10**30, 1.7976931348623157e308, 5e-324]
)
"""Boundary numbers: negative counts, past the 64-bit range (orjson turns those into floats), near max."""

NON_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
"""Written by json.dumps as the NaN/Infinity tokens, which are not JSON (the line must be dropped)."""

STRINGS = st.text(max_size=10) | st.sampled_from(
    ["", '"', "\\", "\n", 'a "quoted"\\path\nline', "\u2028", "\x00", "é", "😀", "\ud800", "NaN", "p99", "0"]
)
"""Strings that end up in label values: quotes, backslashes, newlines, NUL, a lone surrogate."""

KEYS = st.sampled_from(KNOWN_KEYS) | st.text(max_size=6)

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | NUMBERS | NON_FINITE | st.floats(allow_nan=False) | STRINGS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)

# --- structural mutations of the decoded document --------------------------------------------------

Draw = Callable[[st.SearchStrategy[Any]], Any]
Slot = tuple[Any, Any, int]
"""(container, key or index, nesting level): one value in the document, addressed so it can be changed
in place; the level counts the arrays and objects around it, the root being 1."""

DEEP = "\x00deep:"
"""Prefix of a placeholder string that encode() replaces by a value nested deeper than json.dumps can
write."""

ORJSON_MAX_DEPTH = 1024
"""orjson rejects documents nested deeper. Python's recursion limit (1000) is lower, so the levels just
below this one are where code that recurses over a decoded document breaks."""


def nesting(value: Any) -> int:
    """How many arrays and objects deep a value goes (0 for a scalar)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


class Document:
    """A decoded report being mutated, and the deep nestings to splice in when it is encoded."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.deep: list[tuple[int, str, Any]] = []

    def slots(self) -> list[Slot]:
        """Every value below the root, in document order (iterative: mutated documents can be deep)."""
        out: list[Slot] = []
        stack: list[tuple[Any, int]] = [(self.root, 1)]
        while stack:
            node, level = stack.pop()
            items: Iterator[tuple[Any, Any]] = (
                iter(node.items()) if isinstance(node, dict) else iter(enumerate(node))
            )
            for key, value in items:
                out.append((node, key, level))
                if isinstance(value, (dict, list)) and value:
                    stack.append((value, level + 1))
        return out

    def pick(self, draw: Draw) -> Slot | None:
        """A value to mutate, drawn key first, so that a key met once (a group, a runtime's tag, an
        `error`) is as likely as one repeated under every core, which uniform drawing would rarely reach."""
        by_key: dict[str, list[Slot]] = {}
        for slot in self.slots():
            by_key.setdefault(slot[1] if isinstance(slot[1], str) else "[]", []).append(slot)
        if not by_key:
            return None
        return draw(st.sampled_from(by_key[draw(st.sampled_from(sorted(by_key)))]))

    def containers(self, kind: type) -> list[Any]:
        """Every object (or list) in the document, the root included."""
        found = [self.root] if isinstance(self.root, kind) else []
        return found + [c[k] for c, k, _ in self.slots() if isinstance(c[k], kind)]

    def encode(self, ascii_only: bool) -> bytes:
        """The document as one line, deep nestings spliced in (latest first: they may contain earlier ones)."""
        line = json.dumps(self.root, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
        for index in reversed(range(len(self.deep))):
            depth, opener, value = self.deep[index]
            closer = "]" if opener == "[" else "}"
            inner = json.dumps(value).encode("utf-8", "surrogatepass")
            nested = opener.encode() * depth + inner + closer.encode() * depth
            line = line.replace(json.dumps(f"{DEEP}{index}").encode(), nested)
        return line


def replace_value(draw: Draw, doc: Document) -> None:
    """Any value becomes arbitrary JSON: the wrong type, a negative count, a huge number, a string."""
    slot = doc.pick(draw)
    if slot:
        container, key, _ = slot
        container[key] = draw(JSON_VALUES)


def splice_value(draw: Draw, doc: Document) -> None:
    """A value becomes a copy of another one: well-formed report pieces in the wrong place."""
    slot, source = doc.pick(draw), doc.pick(draw)
    if slot and source:
        container, key, _ = slot
        container[key] = copy.deepcopy(source[0][source[1]])


def delete_value(draw: Draw, doc: Document) -> None:
    """A key or list entry disappears: a group, a runtime, a core, a required-looking member."""
    slot = doc.pick(draw)
    if slot:
        container, key, _ = slot
        del container[key]


def duplicate_entry(draw: Draw, doc: Document) -> None:
    """A list entry appears twice: duplicated runtimes, devices, models, containers."""
    lists = [c for c in doc.containers(list) if c]
    if lists:
        entries = draw(st.sampled_from(lists))
        index = draw(st.integers(0, len(entries) - 1))
        entries.insert(index + 1, copy.deepcopy(entries[index]))


def rename_key(draw: Draw, doc: Document) -> None:
    """A key is renamed, mostly to another real key: groups moved, core indices that are not numbers."""
    objects = [c for c in doc.containers(dict) if c]
    if objects:
        obj = draw(st.sampled_from(objects))
        old = draw(st.sampled_from(sorted(obj)))
        obj[draw(KEYS)] = obj.pop(old)


def add_key(draw: Draw, doc: Document) -> None:
    """An object gains a member, mostly a real key in a place it does not belong."""
    obj = draw(st.sampled_from(doc.containers(dict) or [{}]))
    obj[draw(KEYS)] = draw(JSON_VALUES)


def nest_value(draw: Draw, doc: Document, *, to_the_limit: bool = False) -> None:
    """A value is wrapped in lists or objects: a few levels, or to just below or above orjson's limit."""
    slot = doc.pick(draw)
    if not slot:
        return
    container, key, level = slot
    value = container[key]
    room = ORJSON_MAX_DEPTH - level - nesting(value)
    near_limit = st.integers(room - 24, room + 1)
    depth = max(1, draw(near_limit if to_the_limit else st.integers(1, 5) | near_limit))
    opener = draw(st.sampled_from(["[", '{"a":', '{"0":', '{"v3d":']))
    doc.deep.append((depth, opener, value))
    container[key] = f"{DEEP}{len(doc.deep) - 1}"


STRUCTURAL = [replace_value, splice_value, delete_value, duplicate_entry, rename_key, add_key, nest_value]


@st.composite
def mutated(draw: Draw, line: bytes) -> bytes:
    """A seed line decoded, mutated one to three times, and encoded again."""
    doc = Document(orjson.loads(line))
    for _ in range(draw(st.integers(1, 3))):
        draw(st.sampled_from(STRUCTURAL))(draw, doc)
    return doc.encode(ascii_only=draw(st.booleans()))


@st.composite
def nested_to_the_limit(draw: Draw, line: bytes) -> bytes:
    """A seed line with one value nested until the document is about as deep as orjson reads."""
    doc = Document(orjson.loads(line))
    nest_value(draw, doc, to_the_limit=True)
    return doc.encode(ascii_only=True)


# --- byte-level mutations of the encoded line ------------------------------------------------------

NUMBER_TOKEN = re.compile(rb"(?<=[:\[,])\s*(-?[0-9][0-9.eE+-]*)")
SPECIAL_TOKENS = st.sampled_from(
    [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1e-999", b"18446744073709551616", b"-0",
     b"01", b"1.", b".5", b"0x10", b"1 2", b"true", b'"1"', b"null"]
)  # fmt: skip


def _index(draw: Draw, line: bytes) -> int:
    """A position in the line, both ends included."""
    return int(draw(st.integers(0, len(line))))


def truncate(draw: Draw, line: bytes) -> bytes:
    """The line is cut short, as by a killed writer or a full pipe."""
    return line[: _index(draw, line)]


def flip_byte(draw: Draw, line: bytes) -> bytes:
    """One byte is corrupted (invalid UTF-8 included)."""
    if not line:
        return line
    i = draw(st.integers(0, len(line) - 1))
    return line[:i] + bytes([line[i] ^ draw(st.integers(1, 255))]) + line[i + 1 :]


def insert_bytes(draw: Draw, line: bytes) -> bytes:
    """Arbitrary bytes appear somewhere in the line."""
    i = _index(draw, line)
    return line[:i] + draw(st.binary(min_size=1, max_size=8)) + line[i:]


def special_number(draw: Draw, line: bytes) -> bytes:
    """A number becomes a token that is not JSON, or one at its edges (1e999 overflows a double)."""
    spans = [m.span(1) for m in NUMBER_TOKEN.finditer(line)]
    if not spans:
        return line
    start, end = draw(st.sampled_from(spans))
    return line[:start] + draw(SPECIAL_TOKENS) + line[end:]


def insert_token(draw: Draw, line: bytes) -> bytes:
    """A special token lands at an arbitrary place."""
    i = _index(draw, line)
    return line[:i] + draw(SPECIAL_TOKENS) + line[i:]


def not_an_object(draw: Draw, line: bytes) -> bytes:
    """A valid JSON document that is not a report object, or not one document."""
    forms = [
        b"[" + line + b"]",
        json.dumps(line.decode("utf-8", "replace")).encode(),
        b"42",
        b"-1e308",
        b"null",
        b"true",
        b"[]",
        b"{}",
        line + line,
        line + b" garbage",
        b"\xef\xbb\xbf" + line,
    ]
    return bytes(draw(st.sampled_from(forms)))


def garbage(draw: Draw, line: bytes) -> bytes:
    """Not a report at all: random bytes, or an empty or blank line."""
    return bytes(draw(st.binary(max_size=64) | st.sampled_from([b"", b" ", b"\t", b"\r", b"\x00", b"\n"])))


BYTE_LEVEL = [truncate, flip_byte, insert_bytes, special_number, insert_token, not_an_object, garbage]


@st.composite
def report_lines(draw: Draw, seeds: tuple[bytes, ...]) -> bytes:
    """A seed line as it is, mutated structurally, byte by byte, or both."""
    line: bytes = draw(st.sampled_from(seeds))
    # Structural mutations are drawn more often: most byte-level ones end as `not_json`, which says
    # little about validation and state.
    how = draw(st.sampled_from(["as is", "structural", "structural", "structural", "bytes", "both"]))
    if how in ("structural", "both"):
        line = draw(mutated(line))
    if how in ("bytes", "both"):
        line = draw(st.sampled_from(BYTE_LEVEL))(draw, line)
    return line


# --- the property ----------------------------------------------------------------------------------

Series = tuple[str, frozenset[tuple[str, str]]]


def app_with(*flags: str) -> App:
    """An App built from the command line, exactly as `neuron-exporter --replay ... --once FLAGS` is."""
    args = build_parser().parse_args(["--replay", str(REPORTS / SEEDS[0]), "--once", *flags])
    return App(settings_from_args(args))


Body = tuple[bytes, str]
"""What App.render returns: the exposition and its content type."""


def scrape(text: Body, openmetrics: Body, before: dict[Series, float]) -> dict[Series, float]:
    """Parse both formats and check them; every counter's latest value, `before` updated.

    A counter is compared with its last value in any earlier scrape, not only the previous one: a
    runtime that leaves and comes back under the same tag resumes its totals.
    """
    body, content_type = text
    assert content_type.startswith("text/plain")
    families = list(parse_text(body.decode()))
    names = [family.name for family in families]
    assert len(names) == len(set(names)), "a family is declared twice"
    owner: dict[str, str] = {}
    counters: dict[Series, float] = {}
    seen: set[Series] = set()
    for family in families:
        for sample in family.samples:
            assert owner.setdefault(sample.name, family.name) == family.name, f"{sample.name} in two families"
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in seen, f"duplicate series {key}"
            seen.add(key)
            if family.type == "counter" and sample.name.endswith("_total"):
                counters[key] = sample.value
            if family.name == "neuron_exporter_collector_success":
                # Validation stands between the input and the collectors: none may fail on valid data.
                assert sample.value == 1, f"collector {sample.labels['collector']} failed"
    for key, value in counters.items():
        if key in before:
            assert value >= before[key], f"counter {key} went from {before[key]} to {value}"
    counters = {**before, **counters}

    body, content_type = openmetrics
    assert content_type.startswith("application/openmetrics-text")
    list(parse_openmetrics(body.decode()))
    return counters


DAEMON_STACK_DEPTH = 20
"""Frames below Ingestor.on_line in the running daemon (12 when replaying, a few more under the
supervisor), which runs with Python's default recursion limit of 1000."""


def stack_depth() -> int:
    """How many frames are below the caller's."""
    frame: FrameType | None = sys._getframe(1)
    depth = 0
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


@contextmanager
def daemon_recursion_limit() -> Iterator[None]:
    """As many free frames as the daemon has: hypothesis raises the limit by 2000 around each example,
    which would hide exactly what the deep-nesting mutations are for."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(stack_depth() + 1000 - DAEMON_STACK_DEPTH)
    try:
        yield
    finally:
        sys.setrecursionlimit(saved)


def check_sequence(app: App, lines: list[bytes]) -> None:
    """Feed the lines one by one, scraping after each; every line is either ingested or counted bad."""
    counters: dict[Series, float] = {}
    for line in lines:
        with daemon_recursion_limit():
            app.ingestor.on_line(line)
            body = app.render(None)
            openmetrics = app.render(OPENMETRICS_ACCEPT)
        counters = scrape(body, openmetrics, counters)
    health = app.health
    assert health.reports + sum(health.bad_lines.values()) == len(lines)


FUZZ = settings(derandomize=True, database=None, deadline=None)


@settings(FUZZ, max_examples=200)
@given(
    variant=st.sampled_from(sorted(VARIANTS)),
    lines=st.lists(report_lines(SEED_LINES), min_size=1, max_size=5),
)
def test_mutated_report_sequences_always_render_a_parsable_exposition(
    variant: str, lines: list[bytes]
) -> None:
    """Up to five lines, each a seed as it is or mutated, through one App in the default, opt-in
    (per-model, per-vCPU) or AWS-compatible mode."""
    check_sequence(app_with(*VARIANTS[variant]), lines)


@settings(FUZZ, max_examples=10)
@given(
    variant=st.sampled_from(sorted(VARIANTS)),
    lines=st.lists(report_lines(LARGE_LINES), min_size=1, max_size=3),
)
def test_mutated_large_trn_reports_always_render_a_parsable_exposition(
    variant: str, lines: list[bytes]
) -> None:
    """The same on a 32-core node with several runtimes, where pruning idle cores and per-core
    ownership have the most to do; few examples, since each line renders about 250 kB in AWS mode."""
    check_sequence(app_with(*VARIANTS[variant]), lines)


@settings(FUZZ, max_examples=150)
@given(
    variant=st.sampled_from(sorted(VARIANTS)),
    line=st.sampled_from(SEED_LINES).flatmap(nested_to_the_limit),
)
def test_values_nested_to_orjson_limit_are_contained(variant: str, line: bytes) -> None:
    """Python's recursion limit is below orjson's depth limit, so any code that walks a decoded report
    recursively (pruning idle cores, comparing a repeated group, quoting an error) can break on a value
    nested just under it. Mutations in the sequence test seldom land there; this one always does, on
    the few keys that matter as often as on the many per-core ones. The line comes twice, so that the
    comparison with the previous report runs too."""
    check_sequence(app_with(*VARIANTS[variant]), [line, line])

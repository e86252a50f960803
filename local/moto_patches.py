"""Small, documented changes to moto, installed on import by the local stack.

Each one either makes moto behave as AWS does where a test depends on it, or removes work moto
repeats for every request or execution although its result cannot change. None changes what an
execution does: the same ASL runs through the same interpreter. Profiles behind the second kind are
in bench/README.md.

- StartExecution is atomic: AWS checks the execution name and creates the execution as one step;
  moto checks, then appends, so two concurrent starts of one TransactionID could both get through.
- The interpreter's Lambda client is made once per region, role and endpoint, not for every Task
  (some 10 ms each). boto3 clients are thread-safe.
- Shard iterators expire 15 minutes after they are handed out, as AWS's do; moto keeps every one,
  and the stream pump gets a new one with each read, for as long as the stack runs.
- A state machine's ASL is parsed and compiled once per definition (ANTLR in pure Python, then moto's
  preprocessor: ~60 ms and ~12 ms of every execution). The compiled program is a tree of declarations
  that evaluation only reads: everything an execution changes lives in its own Environment, as moto's
  own Map and Parallel states rely on when they run one declaration in many threads at once. The one
  exception is each component's `heap_key` (where its retry counters live in an Environment), drawn
  at random on first use; the kept program has them all drawn before it is shared.
- JSONPath expressions are compiled once per path: moto calls jsonpath_ng's `parse` for every path
  it evaluates (the interpreter) and for every input template of an EventBridge target (PutEvents),
  and `parse` builds a new PLY parser (its LALR tables) each time. A compiled path is
  only read afterwards (`find`, `update_or_create` change the data, not the path).
- The list of moto's service modules is read once: moto lists its package directory (some 150
  `isdir` calls) for every request it routes.
- A DynamoDB Query reads only the items that can match: moto's `Table.query` sorts every item of the
  table (`all_items`, DynamoType comparisons in Python) and then keeps one partition, for every Query;
  with the ledger and the audit trail growing through a chaos run, that was most of the stack's CPU
  (a 1,000-payment run never finished). A Query on the table is given its one partition; a Query on
  an index the items whose index keys equal the query's, in table order. moto then does what it did
  (conditions, order, paging, filters, projection) on those, so the answer is the same.
- DynamoDB attribute values are written out directly: moto's response serializer walks the service
  model for every attribute of every item (alias lookups, pickers), the most of a Scan's or a Query's
  time (75% of the stack's process while a chaos run reads its tables back). An AttributeValue is
  already the wire's JSON but for its binary members, which are base64-encoded as moto does.
- A Step Functions history event is written out member by member for the members it holds: moto looks
  each of a HistoryEvent's ~60 members up under every alias it has, for every event of every
  GetExecutionHistory (~24 ms a payment's history, ~12 ms with this; the chaos run and the bench read
  back thousands). Only for an event whose keys are all member names, with no member renamed on the
  wire and no response transformer: what it leaves out, moto would have found under no alias.
- Execution ends are announced (`execution_ended`): a client on the stack waits for an execution
  without polling DescribeExecution (`/_local/executions/ended`, in local.stack).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

import jsonpath_ng
import jsonpath_ng.ext
from moto import backends
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Item, Table
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.component import Component
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

# -- StartExecution is atomic ----------------------------------------------------------------------
_start_execution = StepFunctionsParserBackend.start_execution
_start_lock = threading.Lock()


def _atomic_start_execution(self: StepFunctionsParserBackend, *args: Any, **kwargs: Any) -> Any:
    with _start_lock:
        started = _start_execution(self, *args, **kwargs)
    execution_ended.count_change()
    return started


# -- one Lambda client per region, role and endpoint for the interpreter ---------------------------
_new_client = lambda_eval_utils.boto_client_for
_clients: dict[tuple[str, str, str | None, str | None], Any] = {}
_clients_lock = threading.Lock()


def _reused_client(region: str, service: str, state_credentials: Any = None) -> Any:
    # The endpoint is localhost:$MOTO_PORT, so a stack started later in this process gets its own.
    key = (region, service, getattr(state_credentials, "role_arn", None), os.environ.get("MOTO_PORT"))
    with _clients_lock:
        if key not in _clients:
            _clients[key] = _new_client(region=region, service=service, state_credentials=state_credentials)
        return _clients[key]


# -- shard iterators expire -------------------------------------------------------------------------
_ITERATOR_LIFETIME_SECONDS = 15 * 60
_get_records = DynamoDBStreamsBackend.get_records
_iterators_handed_out: dict[str, float] = {}
_iterators_lock = threading.Lock()


def _get_records_expiring_iterators(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> dict[str, Any]:
    answer = _get_records(self, iterator_arn, limit)
    now = time.monotonic()
    with _iterators_lock:
        _iterators_handed_out[answer["NextShardIterator"]] = now
        # In order of handing out: the expired ones come first.
        while _iterators_handed_out:
            arn, handed_out = next(iter(_iterators_handed_out.items()))
            if now - handed_out < _ITERATOR_LIFETIME_SECONDS:
                break
            del _iterators_handed_out[arn]
            self.shard_iterators.pop(arn, None)
    return answer


# -- a DynamoDB Query reads only the items that can match ---------------------------------------------
_table_query = Table.query


class _QueryScope:
    """The table as moto's Query sees it: `all_items` holds only the items that can match."""

    def __init__(self, table: Table, candidates: list[Item]) -> None:
        self._table = table
        self._candidates = candidates

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def all_items(self) -> list[Item]:
        return self._candidates


def _scoped_query(self: Table, hash_key: DynamoType | None, *args: Any, **kwargs: Any) -> Any:
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    if index_name:
        conditions = kwargs.get("hash_key_conditions") or []
        candidates = [item for item in _every_item(self) if _matches(item, conditions)]
    else:
        candidates = _partition(self, hash_key)
    return _table_query(_QueryScope(self, candidates), hash_key, *args, **kwargs)  # type: ignore[arg-type]


def _partition(table: Table, hash_key: DynamoType | None) -> list[Item]:
    found = table.items.get(hash_key) if hash_key is not None else None
    if found is None:
        return []
    return list(found.values()) if table.range_key_attr else [found]  # type: ignore[list-item]


def _every_item(table: Table) -> Iterable[Item]:
    for partition in table.items.values():
        if table.range_key_attr:
            yield from partition.values()  # type: ignore[union-attr]
        else:
            yield partition  # type: ignore[misc]


def _matches(item: Item, conditions: list[tuple[str, DynamoType]]) -> bool:
    """As moto's own test: every key attribute present and equal (an item without one is not indexed)."""
    for name, value in conditions:
        found = item.attrs.get(name)
        if found is None or found != value:
            return False
    return True


# -- DynamoDB attribute values, written out directly ---------------------------------------------------
_serialize_structure = BaseJSONSerializer._serialize_type_structure
_STRINGS = frozenset({"S", "N"})
_STRING_SETS = frozenset({"SS", "NS"})
_FLAGS = frozenset({"BOOL", "NULL"})


def _serialize_structure_fast(self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str) -> None:
    if shape.name in _SPARSE and _only_members(self, value, shape):
        _serialize_present_members(self, serialized, value, shape, key)
        return
    written = _attribute_value(self, value) if key and shape.name == "AttributeValue" else None
    if written is None:  # not an attribute value, or one with what this does not know: moto's own way
        _serialize_structure(self, serialized, value, shape, key)
    else:
        serialized[self.get_serialized_name(shape, key)] = written


# -- Step Functions history events: only the members an event has ---------------------------------------
# A HistoryEvent has some 60 members, one of them a `...EventDetails` for each kind of event; an event
# holds 4 or 5. moto's serializer looks every member up under each of its aliases, for every event.
_SPARSE = frozenset({"HistoryEvent"})


def _only_members(serializer: BaseJSONSerializer, value: Any, shape: Any) -> bool:
    """A plain dict whose keys are all the shape's member names, no member renamed on the wire and no
    response transformer: then a member it does not hold is one moto would find under no alias either, so
    moto would leave it out. moto looks a member up by its own name, its shape's name, the name the object's
    Meta gives it (a dict has none), its wire name, the rest of its name after the parent shape's name
    (taken only when no member has that name) or after the object's class name (`dict`), and the snake_case
    form of each: none of them is another member's name in Step Functions' HistoryEvent (or SWF's), and a
    dict holding one of them would hold a key that is no member's name."""
    return (
        type(value) is dict  # not a subclass: a defaultdict would answer for every member
        and value.keys() <= shape.members.keys()
        and not getattr(serializer._value_picker, "response_transformers", None)
        and not _renames_a_member(shape)
    )


@functools.cache  # per shape (botocore's shapes hash by identity, and live as long as their service model)
def _renames_a_member(shape: Any) -> bool:
    """Whether a member of the shape has another name on the wire."""
    return any("name" in member.serialization for member in shape.members.values())


def _serialize_present_members(self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str) -> None:
    """moto's own _serialize_type_structure, over the members the value holds."""
    wrapper: Any = self.MAP_TYPE() if key else serialized
    for member_key, member_shape in shape.members.items():
        if member_key in value:
            member_shape.parent = shape
            self._serialize_structure_member(wrapper, value, member_shape, member_key)
    if key:
        self._default_serialize(serialized, wrapper, shape, key)


def _attribute_value(serializer: BaseJSONSerializer, value: Any) -> dict[str, Any] | None:
    """The wire's JSON of one AttributeValue, as moto's model-driven serializer writes it; None for
    anything else (not a dict, an unknown member, a member without a value)."""
    if not isinstance(value, dict):
        return None
    written: dict[str, Any] = {}
    for kind, inner in value.items():
        if inner is None:
            return None
        if kind in _STRINGS:
            written[kind] = str(inner)
        elif kind in _STRING_SETS:
            written[kind] = [str(member) for member in inner]
        elif kind == "B":
            written[kind] = serializer._base64(inner)
        elif kind == "BS":
            written[kind] = [serializer._base64(member) for member in inner]
        elif kind in _FLAGS:
            written[kind] = bool(inner)
        elif kind == "M":
            members = {name: _attribute_value(serializer, member) for name, member in inner.items()}
            if any(member is None for member in members.values()):
                return None
            written[kind] = members
        elif kind == "L":
            listed = [_attribute_value(serializer, member) for member in inner]
            if any(member is None for member in listed):
                return None
            written[kind] = listed
        else:
            return None
    return written


# -- the ASL program, compiled once per definition ---------------------------------------------------
_parse_definition = AmazonStateLanguageParser.parse


@functools.lru_cache(maxsize=64)
def _compiled(definition: str) -> tuple[Any, Any]:
    program, tree = _parse_definition(definition)
    _draw_heap_keys(program, set())
    return program, tree


def _draw_heap_keys(value: Any, seen: set[int]) -> None:
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, EvalComponent):
        _ = value.heap_key
    if isinstance(value, Component):
        for attribute in vars(value).values():
            _draw_heap_keys(attribute, seen)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _draw_heap_keys(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            _draw_heap_keys(item, seen)


def _parse_compiled(definition: str) -> tuple[Any, Any]:
    return _compiled(definition)


# -- JSONPath expressions, compiled once per path ----------------------------------------------------
_compiled_extended_path = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)
_compiled_path = functools.lru_cache(maxsize=1024)(jsonpath_ng.parse)


# -- moto's service modules, listed once --------------------------------------------------------------
@functools.cache
def _moto_modules() -> frozenset[str]:
    return frozenset(_list_of_moto_modules())


_list_of_moto_modules = backends.list_of_moto_modules


def _listed_moto_modules() -> Iterable[str]:
    return _moto_modules()


# -- execution ends, announced ------------------------------------------------------------------------
class ExecutionEnds:
    """Which executions have ended, for waiting on one without polling; and how many executions have
    started or ended so far (`changes`), for a reader that keeps what it listed until that changes."""

    def __init__(self) -> None:
        self._ended: set[str] = set()
        self._changed = threading.Condition()
        self.changes = 0

    def count_change(self) -> None:
        with self._changed:
            self.changes += 1

    def announce(self, execution_arn: str) -> None:
        with self._changed:
            self._ended.add(execution_arn)
            self.changes += 1
            self._changed.notify_all()

    def wait(self, execution_arn: str, timeout: float) -> bool:
        """True once the execution has ended (it may have already); False if `timeout` seconds passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: execution_arn in self._ended, timeout)


execution_ended = ExecutionEnds()
_terminated = BaseExecutionWorkerCommunication.terminated


def _terminated_and_announced(self: BaseExecutionWorkerCommunication) -> None:
    _terminated(self)  # the execution's status, stop date and output are set by now
    execution_ended.announce(self.execution.exec_arn)


StepFunctionsParserBackend.start_execution = _atomic_start_execution  # type: ignore[method-assign]
lambda_eval_utils.boto_client_for = _reused_client
DynamoDBStreamsBackend.get_records = _get_records_expiring_iterators  # type: ignore[method-assign]
AmazonStateLanguageParser.parse = staticmethod(_parse_compiled)  # type: ignore[method-assign, assignment]
json_path.parse = _compiled_extended_path
jsonpath_ng.ext.parse = _compiled_extended_path  # moto.events.utils imports it where it is used
result_path.parse = _compiled_path
backends.list_of_moto_modules = _listed_moto_modules
BaseExecutionWorkerCommunication.terminated = _terminated_and_announced  # type: ignore[method-assign]
Table.query = _scoped_query  # type: ignore[method-assign]
BaseJSONSerializer._serialize_type_structure = _serialize_structure_fast  # type: ignore[method-assign]

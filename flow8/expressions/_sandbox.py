"""The evaluator: jsonata-python's, with its built-ins guarded and its operators bounded.

Built-ins come from ``SANDBOX_FRAME`` (each behind a guard), never from the library's own
table. The operators that build data are bounded here:

* ``&`` writes both sides as text under the string cap and the memory budget (the
  library's ``$string`` of an operand was one unbounded ``json.dumps``);
* ranges are capped at ``MAX_RANGE`` items (the library allows 10 million);
* array constructors, wildcards, group-by and tuple streams gathered their items with
  ``Functions.append``, which copies the whole list for every item it adds (quadratic:
  ``[$x, $x, ...]`` or grouping 100k items under one key). Here the list grows in place;
  where the library's copy reset its flags, they are reset the same way;
* a transform (``~> |...|...|``) copies its input as ``$clone`` does: bounded;
* the walks the evaluator makes over whole values without evaluating a node (``=``,
  ``in``, the truth of an array, ``*``, ``**``, a name read from nested arrays, typed
  array signatures) check the deadline as they go (``_walks``).

Calls are checked as the library checks them, reported as JSONata reports them: a value
that is not a function is refused before the library prints it to stdout, and an argument
a signature refuses is named by JSONata's rule (``_explain``).

Inputs are JSON already (so the library's per-evaluation input validation is skipped) and
results are converted by ``to_json`` under the budget (so the library's null conversion,
an unbounded walk, is skipped).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from jsonata import jexception, utils
from jsonata.functions import Functions
from jsonata.jsonata import Jsonata
from jsonata.parser import Parser

from ._budget import TUPLE_BYTES, LimitHit, current, size_of
from ._builtins import SANDBOX_FRAME
from ._builtins_data import clone_
from ._explain import MISSING, ArgumentMismatch, NotAFunction
from ._jsontext import jsonata_string
from ._limits import MAX_RANGE
from ._walks import (
    Walk,
    all_numbers,
    boolize,
    deep_equal,
    descendants,
    flatten,
    includes,
    lookup,
)

_JList = utils.Utils.JList
_create_sequence = utils.Utils.create_sequence
_is_numeric = utils.Utils.is_numeric
_NULL = utils.Utils.NULL_VALUE
# What a call may find in place of a function: data (the library's last resort prints it).
_DATA = frozenset({str, int, float, bool, dict, list, _JList, type(_NULL)})
_SIGNATURE_ERRORS = frozenset({"T0410", "T0411", "T0412"})
# Called directly, not through super(): once per function call, and the lookup costs as
# much as the checks added to it.
_validate_arguments = Jsonata.validate_arguments


def _append(data: Any, item: Any, owned: bool) -> tuple[Any, bool]:
    """``Functions.append(data, item)``, in place when ``data`` is a list built here
    (``owned``); returns the new data and whether it is owned."""
    if data is None:
        return item, False
    if item is None:
        return data, owned
    if owned:
        data.extend(item if isinstance(item, list) else (item,))
        return data, True
    return Functions.append(data, item), True


class Sandboxed(Jsonata):  # type: ignore[misc]
    def __init__(self, expr: str, regex_engine: Any) -> None:
        super().__init__(expr, regex_engine)
        self.environment = Jsonata.Frame(SANDBOX_FRAME)
        self.validate_input = False
        self.output_convert_nulls = False

    def thread_copy(self) -> Sandboxed:
        """A copy for another thread: nodes write the instance's ``input``/``environment``
        as they run, and partial application parses with the instance's parser."""
        other: Sandboxed = copy.copy(self)
        other.parser = Jsonata.get_parser()
        return other

    def evaluate_string_concat(self, lhs: Any, rhs: Any) -> Any:
        budget = current()
        left = "" if lhs is None else jsonata_string(lhs, None, budget, "&")
        right = "" if rhs is None else jsonata_string(rhs, None, budget, "&")
        budget.string("&", len(left) + len(right))
        result = left + right
        budget.charge(size_of(result))
        return result

    def evaluate_range_expression(self, lhs: Any, rhs: Any) -> Any:
        if (
            isinstance(lhs, int)
            and isinstance(rhs, int)
            and not isinstance(lhs, bool)
            and not isinstance(rhs, bool)
            and rhs - lhs + 1 > MAX_RANGE
        ):
            raise LimitHit(
                "range", f"range [{lhs}..{rhs}] is larger than the {MAX_RANGE} items allowed"
            )
        return super().evaluate_range_expression(lhs, rhs)

    def evaluate_unary(self, expr: Any, input: Any, environment: Any) -> Any:
        if str(expr.value) != "[":
            return super().evaluate_unary(expr, input, environment)
        result = _JList()
        for idx, item in enumerate(expr.expressions):
            environment.is_parallel_call = idx > 0
            value = self.eval(item, input, environment)
            if value is not None:
                if str(item.value) == "[" or not isinstance(value, list):
                    result.append(value)
                else:
                    result.extend(value)
        if expr.consarray:
            result.cons = True
        return result

    def evaluate_wildcard(self, expr: Any, input: Any) -> Any:
        results = _create_sequence()
        if isinstance(input, _JList) and input.outer_wrapper and input:
            input = input[0]
        if input is not None and isinstance(input, dict):
            values: Any = input.values()
        elif isinstance(input, list):
            values = input
        else:
            return results
        copied = False
        walk = Walk(current())
        for value in values:
            walk.step()
            if isinstance(value, list):
                if not copied:  # Functions.append's copy: a JList without flags
                    results = _JList(results)
                    copied = True
                results.extend(flatten(value, [], walk))
            else:
                results.append(value)
        return results

    def evaluate_descendants(self, expr: Any, input: Any) -> Any:
        if input is None:
            return None
        results = _create_sequence()
        descendants(input, results, Walk(current()))
        return results[0] if len(results) == 1 else results

    def evaluate_name(self, expr: Any, input: Any, environment: Any) -> Any:
        if isinstance(input, list):
            return lookup(input, str(expr.value), Walk(current()))
        return Functions.lookup(input, str(expr.value))

    def evaluate_equality_expression(self, lhs: Any, rhs: Any, op: Any) -> Any:
        if lhs is None or rhs is None:
            return False
        if not isinstance(lhs, bool) and isinstance(lhs, int | float):
            lhs = float(lhs)
        if not isinstance(rhs, bool) and isinstance(rhs, int | float):
            rhs = float(rhs)
        if op == "=":
            return deep_equal(lhs, rhs, Walk(current()))
        if op == "!=":
            return not deep_equal(lhs, rhs, Walk(current()))
        return None

    def evaluate_includes_expression(self, lhs: Any, rhs: Any) -> Any:
        if lhs is None or rhs is None:
            return False
        return includes(lhs, rhs if isinstance(rhs, list) else [rhs], Walk(current()))

    def evaluate_boolean_expression(self, lhs: Any, evalrhs: Any, op: Any) -> Any:
        walk = Walk(current())
        l_bool = boolize(lhs, walk)
        if op == "and":
            return l_bool and boolize(evalrhs(), walk)
        if op == "or":
            return l_bool or boolize(evalrhs(), walk)
        return None

    def evaluate_condition(self, expr: Any, input: Any, environment: Any) -> Any:
        condition = self.eval(expr.condition, input, environment)
        if boolize(condition, Walk(current())):
            return self.eval(expr.then, input, environment)
        if expr._else is not None:
            return self.eval(expr._else, input, environment)
        return None

    def evaluate_filter(self, predicate: Any, input: Any, environment: Any) -> Any:
        results = _create_sequence()
        stream = isinstance(input, _JList) and input.tuple_stream
        if stream:
            results.tuple_stream = True
        if input is None:
            input = _create_sequence()
        elif not isinstance(input, list):
            input = _create_sequence(input)
        if predicate.type == "number":
            index = int(predicate.value)
            if index < 0:
                index = len(input) + index
            if 0 <= index < len(input):
                item = input[index]
                if item is None:
                    item = _NULL
                if isinstance(item, list):
                    results = item
                else:
                    results.append(item)
            return results
        walk = Walk(current())
        for index, item in enumerate(input):
            context = item
            env = environment
            if stream:
                context = item["@"]
                env = self.create_frame_from_tuple(environment, item)
            res = self.eval(predicate, context, env)
            if _is_numeric(res):
                res = _create_sequence(res)
            if all_numbers(res, walk):
                for ires in res:
                    walk.step()
                    ii = int(ires)
                    if ii < 0:
                        ii = len(input) + ii
                    if ii == index:
                        results.append(item)
            elif boolize(res, walk):
                results.append(item)
        return results

    def apply(self, proc: Any, args: Any, input: Any, environment: Any) -> Any:
        # The library's, refusing an undefined function in a tail call as the evaluator
        # refuses one elsewhere (T1006, named); the library's last resort printed it.
        result = self.apply_inner(proc, args, input, environment)
        while Functions.is_lambda(result) and result.thunk:
            body = result.body
            procedure = body.procedure
            next_ = self.eval(procedure, result.input, result.environment)
            if next_ is None:
                name = procedure.steps[0].value if procedure.type == "path" else procedure.value
                raise jexception.JException("T1006", procedure.position, name)
            if isinstance(next_, Parser.Symbol):
                if procedure.type == "variable":
                    next_.token = procedure.value
                next_.position = procedure.position
            evaluated = [self.eval(arg, result.input, result.environment) for arg in body.arguments]
            result = self.apply_inner(next_, evaluated, input, environment)
        return result

    def validate_arguments(self, signature: Any, args: Any, context: Any) -> Any:
        if signature.__class__ in _DATA:
            raise NotAFunction(signature)
        # A signature with typed arrays (a<n>, a<s>...) checks every item in Python.
        if isinstance(args, list):
            items = sum(len(a) for a in args if isinstance(a, list))
            if items:
                current().work(items)
        try:
            return _validate_arguments(self, signature, args, context)
        except jexception.JException as e:
            if e.error not in _SIGNATURE_ERRORS or isinstance(e, ArgumentMismatch):
                raise
            raise _mismatch(signature, args, e) from None

    def evaluate_tuple_step(
        self, expr: Any, input: Any, tuple_bindings: Any, environment: Any
    ) -> Any:
        # The library's, with the deadline checked and the tuples charged as they are made:
        # a step binding a large array (``$#$i``) makes a dict per item without evaluating
        # a node.
        if expr.type == "sort":
            return super().evaluate_tuple_step(expr, input, tuple_bindings, environment)
        budget = current()
        walk = Walk(budget)
        result = _create_sequence()
        result.tuple_stream = True
        if tuple_bindings is None:
            tuple_bindings = []
            for item in input:
                walk.step()
                tuple_bindings.append({"@": item})
            budget.charge(TUPLE_BYTES * len(tuple_bindings))
        made = 0
        for tuple_binding in tuple_bindings:
            step_env = self.create_frame_from_tuple(environment, tuple_binding)
            res = self.eval(expr, tuple_binding["@"], step_env)
            if res is None:
                continue
            if not isinstance(res, list):
                res = [res]
            stream = isinstance(res, _JList) and res.tuple_stream
            for bb, item in enumerate(res):
                walk.step()
                made += 1
                if not made % 1024:
                    budget.charge(1024 * TUPLE_BYTES)
                binding = dict(tuple_binding)
                if stream:
                    binding.update(item)
                else:
                    if expr.focus is not None:
                        binding[expr.focus] = item
                        binding["@"] = tuple_binding["@"]
                    else:
                        binding["@"] = item
                    if expr.index is not None:
                        binding[expr.index] = bb
                    if expr.ancestor is not None:
                        binding[expr.ancestor.label] = tuple_binding["@"]
                result.append(binding)
        if expr.stages is not None:
            result = self.evaluate_stages(expr.stages, result, environment)
        return result

    def evaluate_group_expression(self, expr: Any, input: Any, environment: Any) -> Any:
        result = {}
        groups: dict[str, Any] = {}
        owned: set[str] = set()
        reduce = bool(isinstance(input, _JList) and input.tuple_stream)
        if not isinstance(input, list):
            input = _create_sequence(input)
        if not input:
            input.append(None)
        for item in input:
            env = self.create_frame_from_tuple(environment, item) if reduce else environment
            for pair_index, pair in enumerate(expr.lhs_object):
                key = self.eval(pair[0], item["@"] if reduce else item, env)
                if key is not None and not isinstance(key, str):
                    raise jexception.JException("T1003", expr.position, key)
                if key is None:
                    continue
                entry = groups.get(key)
                if entry is None:
                    groups[key] = Jsonata.GroupEntry(item, pair_index)
                    continue
                if entry.exprIndex != pair_index:
                    raise jexception.JException("D1009", expr.position, key)
                entry.data, mine = _append(entry.data, item, key in owned)
                if mine:
                    owned.add(key)
                else:
                    owned.discard(key)
        for idx, (key, entry) in enumerate(groups.items()):
            context = entry.data
            env = environment
            if reduce:
                bindings = self.reduce_tuple_stream(entry.data)
                context = bindings["@"]
                bindings.pop("@", None)
                env = self.create_frame_from_tuple(environment, bindings)
            env.is_parallel_call = idx > 0
            res = self.eval(expr.lhs_object[entry.exprIndex][1], context, env)
            if res is not None:
                result[key] = res
        return result

    def reduce_tuple_stream(self, tuple_stream: Any) -> Any:
        if not isinstance(tuple_stream, list):
            return tuple_stream
        result = dict(tuple_stream[0])
        owned: set[str] = set()
        for el in tuple_stream[1:]:
            for k, v in el.items():
                result[k], mine = _append(result[k], v, k in owned)
                if mine:
                    owned.add(k)
                else:
                    owned.discard(k)
        return result

    def evaluate_transform_expression(self, expr: Any, input: Any, environment: Any) -> Any:
        return Jsonata.JFunction(_Transformer(self, expr, environment), "<(oa):o>")


def _mismatch(proc: Any, args: Any, error: Any) -> ArgumentMismatch:
    """The library's signature error, with the argument JSONata would name: the first one
    past the longest prefix of the arguments that the signature matches (the library
    matched all of them against each prefix of the signature, so it blamed argument 1)."""
    sig = getattr(proc, "signature", None)
    # A built-in by its own name (the library renames a shared signature after any
    # variable it is bound to); a lambda by the variable it was called through, if any.
    name = proc.token if isinstance(proc, Parser.Symbol) else getattr(proc, "function_name", None)
    name = name if isinstance(name, str) else None
    given = list(args) if isinstance(args, list) else []
    if error.error == "T0412":
        index = int(error.current)
        value = given[index - 1] if 0 < index <= len(given) else MISSING
        return ArgumentMismatch("T0412", name, index, value, str(error.extra))
    if error.error == "T0411":
        return ArgumentMismatch("T0411", name, int(error.expected), error.current, None)
    params = getattr(sig, "_params", None) or []
    supplied = "".join(sig.get_symbol(a) for a in given) if sig is not None else ""
    # A parameter that defaults to the context (``s-``) is optional, but with as many
    # arguments as that parameter and the required ones the caller gave it explicitly:
    # matched as optional, "a" in $formatNumber("a", "#") would be taken for the picture.
    explicit = len(given) >= sum(1 for p in params if p.context or not p.regex.endswith("?"))
    # What the wrong argument should have been: the first parameter that matched nothing
    # at its position (an optional one, skipped), else the one whose pattern failed.
    pattern = "^"
    good = 0
    expected: str | None = None
    for param in params:
        pattern += param.regex[:-1] if explicit and param.context else param.regex
        found = re.match(pattern, supplied)
        if found is not None and found.end() > good:
            good = found.end()
            expected = None
        elif expected is None:
            expected = str(param.type) + (f"<{param.subtype}>" if param.subtype else "")
        if found is None:
            break
    value = given[good] if good < len(given) else MISSING
    return ArgumentMismatch("T0410", name, good + 1, value, expected)


class _Transformer(Jsonata.Transformer):  # type: ignore[misc]
    """The library's transformer, copying its input with the bounded ``$clone``."""

    def call(self, input: Any, args: Any) -> Any:
        obj = args[0]
        if obj is None:
            return None
        result = clone_(obj)
        matches = self._jsonata.eval(self._expr.pattern, result, self._environment)
        if matches is None:
            return result
        if not isinstance(matches, list):
            matches = [matches]
        for match_ in matches:
            update = self._jsonata.eval(self._expr.update, match_, self._environment)
            if update is not None:
                if not isinstance(update, dict):
                    raise jexception.JException("T2011", self._expr.update.position, update)
                for k in update:
                    match_[k] = update[k]
            if self._expr.delete is not None:
                deletions = self._jsonata.eval(self._expr.delete, match_, self._environment)
                if deletions is not None:
                    val = deletions
                    if not isinstance(deletions, list):
                        deletions = [deletions]
                    if not utils.Utils.is_array_of_strings(deletions):
                        raise jexception.JException("T2012", self._expr.delete.position, val)
                    for item in deletions:
                        if isinstance(match_, dict):
                            match_.pop(item, None)
        return result

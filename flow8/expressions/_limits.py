"""How far one expression evaluation may go: the configurable budget and the absolute caps.

Each evaluation gets a budget (``ExpressionLimits``): a wall-clock deadline, a nesting
depth and a memory budget in estimated bytes. On the event loop it first runs within a
short *slice* of that budget; an evaluation that outgrows the slice is abandoned and run
again from scratch in a worker thread (at most ``threads`` at once) with the whole budget.

The caps below are absolute and hold in every mode. In a worker thread the interpreter
gives the event loop the GIL between bytecodes, but a single C-level call keeps it for as
long as it runs, so the caps and piece sizes were chosen by timing such calls on the
shared 2-core VM this project is developed on (medians):

* unbounded, at 10M characters: ``casefold`` of non-ASCII text 58 ms, ``json.dumps`` 61 ms
  (non-ASCII), ``re.sub`` 84 ms, ``str.split`` into 1M pieces 56 ms, ``b64decode`` 32 ms;
  ``json.dumps`` of 1M numbers 72 ms, ``sum``/``max`` of 5M numbers 23/67 ms;
* so those run in pieces: 500k characters per call (``casefold`` 3 ms, ``upper`` 1.8 ms,
  JSON escaping 2.1 ms, ``a2b_base64`` 1 ms), 100k for ``$trim``'s regex (2 ms), 16k
  for URL coding (pure Python: 1-6 ms), ``ITEM_CHUNK`` items for reductions (0.5 ms);
* what is left as one call, at the caps: ``str.find`` over 10M characters 8 ms,
  ``str.count`` 3 ms, ``str.replace`` of 100k occurrences 4 ms, ``str.split`` into 100k
  pieces 13 ms, the UTF-8 copy re2 makes of its subject (10M non-ASCII characters)
  7-13 ms, ``sorted`` of 100k strings 10 ms, ``float``/``int(s, 16)`` of 10M digits 6/14 ms;
* in pure Python, re2's ``finditer``/``sub``/``split`` cost 3-5 us per match, so 100k
  matches (the cap) take 0.3-0.5 s: the deadline usually ends regex work first.

Pictures of the formatting built-ins are at most ``MAX_PICTURE`` characters: their parsers
are quadratic and their widths become ``10 ** width``.
"""

from __future__ import annotations

import attrs
import trio

from ._background import configure_background

# Largest range ``[a..b]`` (items). The library allows 10 million.
MAX_RANGE = 100_000
# Largest array (or object) a built-in may build, and most regex matches or replacements
# one call may make: consistent with ranges.
MAX_ITEMS = 100_000
# Longest string an expression may build.
MAX_STRING = 10_000_000
# Longest picture (or width, or parsed text) of $formatNumber, $formatInteger,
# $parseInteger, $fromMillis, $toMillis and $now.
MAX_PICTURE = 1_000
# Characters per C-level call when a built-in walks a long string.
STRING_CHUNK = 500_000
# Items per C-level call when a built-in walks a long array.
ITEM_CHUNK = 100_000
# Work (characters or items a built-in or a typed signature will touch) above which an
# evaluation leaves the event loop at once instead of spending its slice on it: some of
# that work is pure Python that checks no deadline (``random.shuffle``: 0.4 us an item,
# typed-array signatures: about 1 us an item), so at most ~10 ms.
LOOP_WORK = 10_000

_MB = 1024 * 1024


@attrs.frozen
class ExpressionLimits:
    """The budget of one evaluation and how it is run.

    * ``timeout_ms``: deadline of one evaluation (its thread's CPU time in a worker thread,
      at most 10x on the clock).
    * ``memory_bytes``: what one evaluation may allocate, in estimated bytes, counted
      cumulatively (everything it built, even what it dropped again).
    * ``max_depth``: nesting of expression nodes (recursion through lambdas included).
    * ``slice_ms`` / ``slice_memory_bytes``: what an evaluation may spend on the event loop
      before it is abandoned and evaluated again in a worker thread.
    * ``threads``: worker threads evaluating at once; more heavy evaluations queue.
    """

    timeout_ms: int = attrs.field(default=250, validator=attrs.validators.gt(0))
    memory_bytes: int = attrs.field(default=64 * _MB, validator=attrs.validators.gt(0))
    max_depth: int = attrs.field(default=150, validator=attrs.validators.gt(0))
    slice_ms: float = attrs.field(default=20.0, validator=attrs.validators.gt(0))
    slice_memory_bytes: int = attrs.field(default=8 * _MB, validator=attrs.validators.gt(0))
    threads: int = attrs.field(default=2, validator=attrs.validators.gt(0))


_limits = ExpressionLimits()


def configure_expressions(limits: ExpressionLimits) -> None:
    """Set the limits of every evaluation from now on (call once at start-up); ``threads``
    sizes the process's background threads (see _background)."""
    global _limits
    _limits = limits
    configure_background(limits.threads)


def expression_limits() -> ExpressionLimits:
    return _limits


def describe_bytes(n: int) -> str:
    return f"{n / _MB:g} MB" if n >= _MB else f"{n} bytes"


_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("expr_limiter")


def thread_limiter() -> trio.CapacityLimiter:
    """The limiter of worker-thread evaluations in this Trio run."""
    size = _limits.threads
    try:
        limiter = _LIMITER.get()
    except LookupError:
        limiter = None
    if limiter is None or limiter.total_tokens != size:
        if limiter is not None:
            limiter.total_tokens = size  # keeps the tokens already borrowed
        else:
            limiter = trio.CapacityLimiter(size)
            _LIMITER.set(limiter)
    return limiter

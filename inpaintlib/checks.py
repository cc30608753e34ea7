"""The argument checks every public function uses, so that bad input always gets the same kind of message:
a ``ValueError`` that names the argument, what was expected and what was given.

    check_int(value, name, low=1, high=None)           an int (numpy ints too; not a bool) in [low, high]
    check_number(value, name, low, high, low_open)     a finite int or float in [low, high] (or (low, high])
    check_choice(value, name, choices)                 one of ``choices``
    check_bool(value, name)                            True or False
    check_optional_int(value, name, low=1)             None or an int >= low
    check_int_pair(value, name, low=1)                 an int n (read as (n, n)) or a pair (H, W) of ints >= low
    is_int(value)                                      the int test itself, for conditions that combine it
"""
from __future__ import annotations

import math
import numbers


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


is_int = _is_int


def check_int(value, name: str, low: int | None = 1, high: int | None = None) -> int:
    """``value`` as an int if it is an int in [low, high] (None: unbounded on that side)."""
    if not _is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            bounds = f" in [{low}, {high}]"
        elif low is not None:
            bounds = f" >= {low}"
        else:
            bounds = f" <= {high}" if high is not None else ""
        raise ValueError(f"{name} must be an int{bounds}, got {value!r}")
    return int(value)


def check_optional_int(value, name: str, low: int = 1) -> int | None:
    """None, or ``check_int(value, name, low)``."""
    if value is None:
        return None
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be None or an int >= {low}, got {value!r}")
    return int(value)


def check_int_pair(value, name: str, low: int = 1) -> tuple[int, int]:
    """(H, W) as ints from an int n (a square, (n, n)) or a pair (H, W), each an int >= ``low``."""
    pair = (value, value) if _is_int(value) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(_is_int(s) and s >= low for s in pair):
        raise ValueError(f"{name} must be an int >= {low} or a pair (H, W) of ints >= {low}, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_number(value, name: str, low: float = -math.inf, high: float = math.inf, low_open: bool = False) -> float:
    """``value`` as a float if it is a finite number in [low, high] (or (low, high] with ``low_open``).
    An infinite ``high`` means "any finite number above low"."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
          and low <= value <= high and not (low_open and value == low))
    if not ok:
        if math.isinf(high):
            what = f"a finite number {'>' if low_open else '>='} {low:g}" if math.isfinite(low) else "a finite number"
        else:
            what = f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def check_choice(value, name: str, choices) -> object:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # an unhashable value compared against a set or dict keys
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    """``value`` if it is True or False."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value

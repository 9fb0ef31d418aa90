"""The kinds of number a run takes, each with its bounds: one check for options, YAML expectations and front matter."""

from __future__ import annotations

import math
from dataclasses import dataclass


def _show(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


@dataclass(frozen=True)
class Number:
    """A kind of number: whole or not, its bounds, and what a message calls it."""

    what: str  # "a number of seconds": what a value of the wrong type is not
    whole: bool = False
    low: float = 0
    low_allowed: bool = False  # False: the value must be greater than `low`
    high: float | None = None
    high_note: str = ""  # why the upper bound, shown after it

    def problem(self, value: float) -> str | None:
        """Why `value` is out of bounds ("must be ..."), or None. nan and inf never are numbers of a run."""
        if not math.isfinite(value):
            return "must be a finite number"
        if value < self.low or (value == self.low and not self.low_allowed):
            return f"must be {'at least' if self.low_allowed else 'greater than'} {_show(self.low)}"
        if self.high is not None and value > self.high:
            return f"must be at most {_show(self.high)}{self.high_note}"
        return None

    def parse(self, text: str) -> int | float:
        """`text` (an option's value) as this kind of number; ValueError saying why not ("is not ...")."""
        try:
            value: int | float = int(text) if self.whole else float(text)
        except ValueError:
            raise ValueError(f"is not {self.what}") from None
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def check(self, value: object) -> str | None:
        """Why a YAML value is not this kind of number ("must be ..."), or None."""
        if isinstance(value, bool) or not isinstance(value, int if self.whole else (int, float)):
            return f"must be {self.what}"
        return self.problem(value)


# A timeout of at most a year: no scenario needs longer, and far longer ones (about 292 years) overflow the thread
# waits that enforce them (OverflowError).
SECONDS = Number("a number of seconds", high=365 * 24 * 3600, high_note=" (a year)")
SHARE = Number("a share between 0 and 1", high=1, high_note=" (1.0: every attempt)")
USD = Number("an amount in USD")
COUNT = Number("a whole number", whole=True)  # 1 or more
TIMES = Number("a whole number", whole=True, low_allowed=True)  # 0 or more: retries, a minimum of words
RATE = Number("a pass rate between 0 and 1", low_allowed=True, high=1)  # a gate's threshold: 0 to 1, both allowed
# A significance level above 0.5 calls a coin toss significant.
ALPHA = Number("a significance level between 0 and 0.5", high=0.5, high_note=" (the usual is 0.05)")

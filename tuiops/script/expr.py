"""Variables (``${…}``) and the tiny condition language of ``when:`` — never Python's eval.

References:
    ``${name}``                a variable (``vars:``, ``--var``, or ``workspace``/``script_dir``/``run_id``)
    ``${env.NAME}``            an environment variable
    ``${steps.STEP.KEY.SUB}``  a value of an earlier step's JSON output (list items by index)
    ``${…:-default}``          the default text when the reference is undefined
    ``$${``                    a literal ``${``

A value that is exactly one reference keeps the referenced value's type; references inside
longer text are replaced by their text.

Conditions: numbers, 'strings' or "strings" (references inside them are replaced by their
text), true, false, null, references, comparisons (``== != < <= > >=``), ``and``, ``or``,
``not`` and parentheses. A bare value is true when it is non-zero, non-empty and not null.
Text that reads as a number compares as one; ``true``/``false`` equal the texts true/yes/on
and false/no/off (a ``--var`` value is always text).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tuiops.errors import InputError

REF_RX = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
BUILTINS = ("workspace", "script_dir", "run_id")


@dataclass(frozen=True)
class Ref:
    """One ``${…}`` reference."""

    kind: str
    name: str
    path: tuple[str, ...]
    default: str | None
    text: str

    def __str__(self) -> str:
        return self.text


class Undefined(Exception):
    """A reference has no value (yet); the message says why."""


class Deferred:
    """A value known only when the run gets there (an earlier step's output)."""

    def __init__(self, ref: Ref) -> None:
        self.ref = ref

    def __str__(self) -> str:
        return self.ref.text

    def __repr__(self) -> str:
        return self.ref.text


Resolver = Callable[[Ref], Any]


def parse_ref(body: str, where: str) -> Ref:
    """Parse the inside of ``${…}``; ``where`` (file:line) goes into the error message."""
    text = "${" + body + "}"
    expr, sep, default = body.partition(":-")
    parts = expr.strip().split(".")
    bad = InputError(
        f"{where}: bad reference {text}",
        hint="write ${name}, ${env.NAME} or ${steps.STEP.KEY}",
    )
    if not parts or not all(parts):
        raise bad
    if parts[0] == "env":
        if len(parts) != 2:
            raise bad
        return Ref("env", parts[1], (), default if sep else None, text)
    if parts[0] == "steps":
        if len(parts) < 3 or not _NAME.match(parts[1]):
            raise InputError(
                f"{where}: bad reference {text}",
                hint="an output is ${steps.STEP.KEY} (KEY of the JSON the step's command prints)",
            )
        return Ref("steps", parts[1], tuple(parts[2:]), default if sep else None, text)
    if len(parts) != 1 or not _NAME.match(parts[0]):
        raise bad
    return Ref("var", parts[0], (), default if sep else None, text)


def find_refs(value: Any, where: str) -> list[Ref]:
    """Every reference in a value (a string or a list of them)."""
    if isinstance(value, list):
        return [r for v in value for r in find_refs(v, where)]
    if not isinstance(value, str):
        return []
    return [parse_ref(m.group(1), where) for m in REF_RX.finditer(value) if m.group(1) is not None]


def to_text(value: Any) -> str:
    """How a value is written on a command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def interpolate(value: Any, resolve: Resolver, where: str) -> Any:
    """Replace the references in ``value``; a lone reference keeps its value's type."""
    if isinstance(value, list):
        out: list[Any] = []
        for v in value:
            r = interpolate(v, resolve, where)
            out.extend(r if isinstance(r, list) and isinstance(v, str) and _lone(v) else [r])
        return out
    if not isinstance(value, str) or "$" not in value:
        return value
    lone = _lone(value)
    if lone is not None:
        return _resolve(parse_ref(lone, where), resolve, where)
    deferred = False

    def sub(m: re.Match[str]) -> str:
        nonlocal deferred
        if m.group(1) is None:
            return "${"
        v = _resolve(parse_ref(m.group(1), where), resolve, where)
        if isinstance(v, Deferred):
            deferred = True
        return to_text(v) if not isinstance(v, list | dict) else _json(v)

    text = REF_RX.sub(sub, value)
    return Deferred(Ref("text", text, (), None, text)) if deferred else text


def _json(v: Any) -> str:
    import json

    return json.dumps(v, ensure_ascii=False)


def _lone(value: str) -> str | None:
    m = REF_RX.fullmatch(value)
    return m.group(1) if m is not None and m.group(1) is not None else None


def _resolve(ref: Ref, resolve: Resolver, where: str) -> Any:
    try:
        return resolve(ref)
    except Undefined as exc:
        if ref.default is not None:
            return ref.default
        raise InputError(f"{where}: {ref.text} is undefined: {exc}") from exc


def is_deferred(value: Any) -> bool:
    if isinstance(value, list):
        return any(is_deferred(v) for v in value)
    return isinstance(value, Deferred)


# -- conditions ----------------------------------------------------------------------------------
_TOKEN_RX = re.compile(
    r"""\s*(?:
        (?P<ref>\$\{[^}]*\})
      | (?P<num>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
      | (?P<str>'[^']*'|"[^"]*")
      | (?P<op>==|!=|<=|>=|<|>|\(|\))
      | (?P<word>[A-Za-z_]+)
    )""",
    re.VERBOSE,
)
_WORDS = {"and", "or", "not", "true", "false", "null"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str, where: str) -> list[Token]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RX.match(text, pos)
        if m is None or m.end() == pos:
            raise InputError(
                f"{where}: condition {text!r}: cannot read {text[pos:].strip()[:20]!r}",
                hint="conditions use numbers, 'strings', ${refs}, == != < <= > >=, and/or/not, ( )",
            )
        kind = m.lastgroup or ""
        tok = m.group(kind)
        if kind == "word" and tok.lower() not in _WORDS:
            raise InputError(
                f"{where}: condition {text!r}: unknown word {tok!r}",
                hint="quote text ('text'); variables are written ${name}",
            )
        out.append(Token(kind, tok.lower() if kind == "word" else tok, m.start(kind)))
        pos = m.end()
    return out


class Condition:
    """A parsed ``when:`` condition; :meth:`refs` lists its references, :meth:`evaluate` decides."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where
        self.tokens = tokenize(text, where)
        if not self.tokens:
            raise InputError(f"{where}: the condition is empty")
        self._i = 0
        self.tree = self._or()
        if self._i != len(self.tokens):
            raise self._error(f"unexpected {self.tokens[self._i].text!r}")

    # parsing: or → and → not → comparison → primary
    def _peek(self) -> Token | None:
        return self.tokens[self._i] if self._i < len(self.tokens) else None

    def _take(self) -> Token:
        tok = self._peek()
        if tok is None:
            raise self._error("it ends too early")
        self._i += 1
        return tok

    def _error(self, what: str) -> InputError:
        return InputError(f"{self.where}: condition {self.text!r}: {what}")

    def _or(self) -> Any:
        node = self._and()
        while (t := self._peek()) is not None and t.kind == "word" and t.text == "or":
            self._take()
            node = ("or", node, self._and())
        return node

    def _and(self) -> Any:
        node = self._not()
        while (t := self._peek()) is not None and t.kind == "word" and t.text == "and":
            self._take()
            node = ("and", node, self._not())
        return node

    def _not(self) -> Any:
        t = self._peek()
        if t is not None and t.kind == "word" and t.text == "not":
            self._take()
            return ("not", self._not())
        return self._cmp()

    def _cmp(self) -> Any:
        left = self._primary()
        t = self._peek()
        if t is not None and t.kind == "op" and t.text not in ("(", ")"):
            self._take()
            right = self._primary()
            node = ("cmp", t.text, left, right)
            t2 = self._peek()
            if t2 is not None and t2.kind == "op" and t2.text not in ("(", ")"):
                raise self._error("chained comparisons need and: a < b and b < c")
            return node
        return left

    def _primary(self) -> Any:
        t = self._take()
        if t.kind == "op" and t.text == "(":
            node = self._or()
            close = self._peek()
            if close is None or close.text != ")":
                raise self._error("a ( is not closed")
            self._take()
            return node
        if t.kind == "num":
            return ("lit", float(t.text) if any(c in t.text for c in ".eE") else int(t.text))
        if t.kind == "str":
            body = t.text[1:-1]
            if "${" in body:
                find_refs(body, self.where)
                return ("text", body)
            return ("lit", body)
        if t.kind == "ref":
            return ("ref", parse_ref(t.text[2:-1], self.where))
        if t.kind == "word" and t.text in ("true", "false", "null"):
            return ("lit", {"true": True, "false": False, "null": None}[t.text])
        raise self._error(f"expected a value, got {t.text!r}")

    def refs(self) -> list[Ref]:
        out: list[Ref] = []

        def walk(node: Any) -> None:
            if node[0] == "ref":
                out.append(node[1])
            elif node[0] == "text":
                out.extend(find_refs(node[1], self.where))
            elif node[0] in ("and", "or"):
                walk(node[1])
                walk(node[2])
            elif node[0] == "not":
                walk(node[1])
            elif node[0] == "cmp":
                walk(node[2])
                walk(node[3])

        walk(self.tree)
        return out

    def evaluate(self, resolve: Resolver) -> bool:
        """Decide the condition with the references' values."""
        return truthy(self._eval(self.tree, resolve))

    def _eval(self, node: Any, resolve: Resolver) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "ref":
            return _resolve(node[1], resolve, self.where)
        if kind == "text":
            value = interpolate(node[1], resolve, self.where)
            if isinstance(value, str | Deferred):
                return value
            return _json(value) if isinstance(value, list | dict) else to_text(value)
        if kind == "not":
            return not truthy(self._eval(node[1], resolve))
        if kind == "and":
            return truthy(self._eval(node[1], resolve)) and truthy(self._eval(node[2], resolve))
        if kind == "or":
            return truthy(self._eval(node[1], resolve)) or truthy(self._eval(node[2], resolve))
        _, op, left, right = node
        return self._compare(op, self._eval(left, resolve), self._eval(right, resolve))

    def _compare(self, op: str, a: Any, b: Any) -> bool:
        a, b = _numeric_pair(*_bool_pair(a, b))
        if op == "==":
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        if a is None or b is None or isinstance(a, str) != isinstance(b, str):
            raise InputError(
                f"{self.where}: condition {self.text!r}: cannot compare {a!r} {op} {b!r}",
                hint="compare numbers with numbers and text with text",
            )
        try:
            return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])
        except TypeError as exc:
            raise InputError(
                f"{self.where}: condition {self.text!r}: cannot compare {a!r} {op} {b!r}"
            ) from exc


def _number(v: Any) -> Any:
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int | float):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


_TRUE_WORDS = ("true", "yes", "on")
_FALSE_WORDS = ("false", "no", "off")


def _as_bool(v: Any) -> Any:
    if isinstance(v, str):
        word = v.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return v


def _bool_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """A text true/false compared with a boolean reads as one (``--var flag=true``)."""
    if isinstance(a, bool) and isinstance(b, str):
        return a, _as_bool(b)
    if isinstance(b, bool) and isinstance(a, str):
        return _as_bool(a), b
    return a, b


def _numeric_pair(a: Any, b: Any) -> tuple[Any, Any]:
    na, nb = _number(a), _number(b)
    is_num = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
    if is_num(na) and is_num(nb):
        return na, nb
    return a, b


def truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("", "0", "false", "no", "null", "none")
    if isinstance(v, list | dict):
        return len(v) > 0
    return bool(v)

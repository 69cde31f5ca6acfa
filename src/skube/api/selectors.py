"""Label and field selectors with Kubernetes semantics, compiled once and matched fast.

Label selectors follow apimachinery's ``pkg/labels`` grammar (``=``, ``==``, ``!=``,
``in``, ``notin``, ``gt``/``lt`` via ``>``/``<``, ``key``, ``!key``; comma = AND) and
error texts. Field selectors follow ``pkg/fields`` (``=``, ``==``, ``!=``, backslash
escaping of ``\\ , =`` in values) plus the per-kind field-label conversions the API
server registers: an unsupported field is a 400 with upstream's message.

Matching walks plain JSON dicts directly; a parsed selector is immutable and safe to
share between requests and watchers.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

from skube.api import errors
from skube.api.jsonpath import JSONPathError, compile_path

__all__ = [
    "LabelSelector", "Requirement", "parse_label_selector", "label_selector_from_dict",
    "label_selector_to_string", "format_label_selector", "format_labels",
    "FieldSelector", "parse_field_selector", "supported_fields", "escape_field_value",
    "go_quote",
]

# ---------------------------------------------------------------------------
# Shared helpers: Go-style quoting and upstream's name/value validation messages.
# ---------------------------------------------------------------------------

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(s: str) -> str:
    """``s`` quoted as Go's ``%q`` does (used in field.Error messages)."""
    out = ['"']
    for ch in s:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        else:
            cp = ord(ch)
            if cp < 0x80:
                out.append(f"\\x{cp:02x}")
            elif cp < 0x10000:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)


def _go_value(v: Any) -> str:
    """A field.Error bad value rendered like Go's ErrorBody."""
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, (list, tuple)):
        return "[]string{" + ", ".join(go_quote(x) for x in v) + "}"
    if v is None:
        return "null"
    return str(v)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    ex = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(_QNAME_FMT)
_QNAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', "
              "and must start and end with an alphanumeric character")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUB_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUB_RE = re.compile(_DNS1123_SUB_FMT)
_DNS1123_SUB_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                    "characters, '-' or '.', and must start and end with an alphanumeric character")
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")


def _qualified_name_errors(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errs.append("prefix part must be no more than 253 characters")
            if not _DNS1123_SUB_RE.fullmatch(prefix):
                errs.append("prefix part " + _regex_error(_DNS1123_SUB_MSG, _DNS1123_SUB_FMT,
                                                          "example.com"))
    else:
        return ["a qualified name " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name",
                                                   "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name",
                                                "123-abc"))
    return errs


def _label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _invalid(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {_go_value(value)}: {detail}"


def _aggregate(msgs: list[str]) -> str:
    seen: list[str] = []
    for m in msgs:
        if m not in seen:
            seen.append(m)
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


class _ParseError(Exception):
    pass


# ---------------------------------------------------------------------------
# Label selectors
# ---------------------------------------------------------------------------

# Operators, named as apimachinery's selection.Operator values.
IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
_BINARY_OPS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)

_MISSING = object()
_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(s: str) -> int | None:
    if not _INT64_RE.fullmatch(s):
        return None
    v = int(s)
    return v if -(1 << 63) <= v < (1 << 63) else None


class Requirement:
    """One ``key op values`` clause; immutable."""

    __slots__ = ("key", "operator", "values")

    def __init__(self, key: str, operator: str, values: tuple[str, ...]):
        self.key = key
        self.operator = operator
        self.values = values

    def __repr__(self) -> str:
        return f"Requirement({self.key!r}, {self.operator!r}, {self.values!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Requirement) and self.key == other.key
                and self.operator == other.operator and self.values == other.values)

    def __hash__(self) -> int:
        return hash((self.key, self.operator, self.values))

    def matches(self, labels: Mapping[str, str]) -> bool:
        v = labels.get(self.key, _MISSING)
        op = self.operator
        if op in (EQUALS, DOUBLE_EQUALS, IN):
            return v is not _MISSING and v in self.values
        if op in (NOT_EQUALS, NOT_IN):
            return v is _MISSING or v not in self.values
        if op == EXISTS:
            return v is not _MISSING
        if op == DOES_NOT_EXIST:
            return v is _MISSING
        if v is _MISSING or len(self.values) != 1:
            return False
        lv, rv = _parse_int64(v), _parse_int64(self.values[0])
        if lv is None or rv is None:
            return False
        return lv > rv if op == GREATER_THAN else lv < rv

    def __str__(self) -> str:
        op = self.operator
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op == EXISTS:
            return self.key
        vals = ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({vals})"
        sym = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{sym}{vals}"


def _new_requirement(key: str, op: str, values: list[str], path: str | None = None) -> Requirement:
    """Validated constructor, mirroring NewRequirement (raises _ParseError with the aggregate)."""
    base = path  # None renders as upstream's nil path
    key_path = "key" if base is None else f"{base}.key"
    values_path = "values" if base is None else f"{base}.values"
    errs: list[str] = []
    kerrs = _qualified_name_errors(key)
    if kerrs:
        errs.append(_invalid(key_path, key, "; ".join(kerrs)))
    if op in (IN, NOT_IN):
        if not values:
            errs.append(_invalid(values_path, values,
                                 "for 'in', 'notin' operators, values set can't be empty"))
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(values) != 1:
            errs.append(_invalid(values_path, values,
                                 "exact-match compatibility requires one single value"))
    elif op in (EXISTS, DOES_NOT_EXIST):
        if values:
            errs.append(_invalid(values_path, values,
                                 "values set must be empty for exists and does not exist"))
    elif op in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            errs.append(_invalid(values_path, values,
                                 "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(values):
            if _parse_int64(v) is None:
                errs.append(_invalid(f"{values_path}[{i}]", v,
                                     "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        supported = ", ".join(go_quote(o) for o in (*_BINARY_OPS, EXISTS, DOES_NOT_EXIST))
        errs.append(f"{'operator' if base is None else base + '.operator'}: Unsupported value: "
                    f"{go_quote(op)}: supported values: {supported}")
    for i, v in enumerate(values):
        verrs = _label_value_errors(v)
        if verrs:
            errs.append(_invalid(f"{values_path}[{i}][{key}]", v, "; ".join(verrs)))
    if errs:
        raise _ParseError(_aggregate(errs))
    return Requirement(key, op, tuple(values))


class LabelSelector:
    """A parsed label selector. ``matches(labels)`` is the hot path; ``empty`` means
    it selects everything. Build with :func:`parse_label_selector` or
    :func:`label_selector_from_dict`."""

    __slots__ = ("requirements", "empty", "_nothing", "_eq", "_general")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False):
        reqs = tuple(sorted(requirements, key=lambda r: r.key))
        self.requirements: tuple[Requirement, ...] = reqs
        self._nothing = nothing
        self.empty: bool = not nothing and not reqs
        # Equality-only selectors (the common case: matchLabels, "app=x") match by
        # direct lookups; anything else walks the requirements.
        if all(r.operator in (EQUALS, DOUBLE_EQUALS) for r in reqs):
            self._eq: tuple[tuple[str, str], ...] | None = tuple((r.key, r.values[0]) for r in reqs)
            self._general: tuple = ()
        else:
            self._eq = None
            self._general = tuple(
                (r.key, r.operator, frozenset(r.values) if r.operator in (IN, NOT_IN) else r.values[0]
                 if r.values else None, r) for r in reqs)

    @classmethod
    def everything(cls) -> "LabelSelector":
        return _EVERYTHING

    @classmethod
    def nothing(cls) -> "LabelSelector":
        return _NOTHING

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        if labels is None:
            labels = {}
        eq = self._eq
        if eq is not None:
            get = labels.get
            for k, v in eq:
                if get(k, _MISSING) != v:
                    return False
            return True
        get = labels.get
        for key, op, val, req in self._general:
            v = get(key, _MISSING)
            if op == EQUALS or op == DOUBLE_EQUALS:
                if v != val:
                    return False
            elif op == IN:
                if v is _MISSING or v not in val:
                    return False
            elif op == NOT_IN:
                if v is not _MISSING and v in val:
                    return False
            elif op == NOT_EQUALS:
                if v == val:
                    return False
            elif op == EXISTS:
                if v is _MISSING:
                    return False
            elif op == DOES_NOT_EXIST:
                if v is not _MISSING:
                    return False
            elif not req.matches(labels):
                return False
        return True

    __call__ = matches

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have (``=``, ``==`` or a one-value ``in``), else None."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        if self._nothing:
            return ""
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        if self._nothing:
            return "LabelSelector(<nothing>)"
        return f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LabelSelector) and self._nothing == other._nothing
                and self.requirements == other.requirements)

    def __hash__(self) -> int:
        return hash((self._nothing, self.requirements))


_EVERYTHING = LabelSelector()
_NOTHING = LabelSelector(nothing=True)

# --- the label selector lexer/parser (grammar and messages of pkg/labels) ---

_T_ERROR, _T_EOS, _T_CLOSE, _T_COMMA, _T_NOT, _T_DEQ, _T_EQ, _T_GT = range(8)
_T_ID, _T_IN, _T_LT, _T_NEQ, _T_NOTIN, _T_OPEN = range(8, 14)
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_SYMBOLS = {")": _T_CLOSE, ",": _T_COMMA, "!": _T_NOT, "==": _T_DEQ, "=": _T_EQ, ">": _T_GT,
            "<": _T_LT, "!=": _T_NEQ, "(": _T_OPEN}
_KEYWORDS = {"in": _T_IN, "notin": _T_NOTIN}


def _lex(s: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in _WHITESPACE:
            i += 1
        if i >= n or s[i] == "\x00":
            items.append((_T_EOS, ""))
            return items
        ch = s[i]
        if ch in _SPECIAL:
            two = s[i:i + 2]
            if two in ("!=", "=="):
                items.append((_SYMBOLS[two], two))
                i += 2
            else:
                items.append((_SYMBOLS[ch], ch))
                i += 1
            continue
        j = i
        while j < n and s[j] not in _SPECIAL and s[j] not in _WHITESPACE and s[j] != "\x00":
            j += 1
        word = s[i:j]
        items.append((_KEYWORDS.get(word, _T_ID), word))
        i = j


class _LabelParser:
    def __init__(self, s: str):
        self.items = _lex(s)
        self.pos = 0

    def _tok(self, idx: int, values: bool) -> tuple[int, str]:
        tok, lit = self.items[idx]
        if values and tok in (_T_IN, _T_NOTIN):
            tok = _T_ID
        return tok, lit

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        return self._tok(self.pos, values)

    def consume(self, values: bool = True) -> tuple[int, str]:
        self.pos += 1
        return self._tok(self.pos - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_T_ID, _T_NOT):
                try:
                    reqs.append(self.requirement())
                except _ParseError as e:
                    raise _ParseError(f"unable to parse requirement: {e}") from None
                t, l = self.consume()
                if t == _T_EOS:
                    return reqs
                if t == _T_COMMA:
                    t2, l2 = self.lookahead()
                    if t2 not in (_T_ID, _T_NOT):
                        raise _ParseError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise _ParseError(f"found '{l}', expected: ',' or 'end of string'")
            elif tok == _T_EOS:
                return reqs
            else:
                raise _ParseError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = None
        tok, lit = self.consume()
        if tok == _T_NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok != _T_ID:
            raise _ParseError(f"found '{lit}', expected: identifier")
        kerrs = _qualified_name_errors(lit)
        if kerrs:
            raise _ParseError(_invalid("<nil>", lit, "; ".join(kerrs)))
        key = lit
        if self.lookahead()[0] in (_T_EOS, _T_COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        if op in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, op, [])
        tok, lit = self.consume(values=False)
        op = {_T_IN: IN, _T_EQ: EQUALS, _T_DEQ: DOUBLE_EQUALS, _T_GT: GREATER_THAN,
              _T_LT: LESS_THAN, _T_NOTIN: NOT_IN, _T_NEQ: NOT_EQUALS}.get(tok)
        if op is None:
            raise _ParseError(f"found '{lit}', expected: {', '.join(_BINARY_OPS)}")
        values = self.set_values() if op in (IN, NOT_IN) else self.exact_value()
        return _new_requirement(key, op, sorted(values))

    def set_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _T_OPEN:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_T_ID, _T_COMMA):
            s = self.identifiers()
            if self.consume()[0] != _T_CLOSE:
                raise _ParseError(f"found '{lit}', expected: ')'")
            return s
        if tok == _T_CLOSE:
            self.consume()
            return {""}
        raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _T_ID:
                s.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == _T_COMMA:
                    continue
                if tok2 == _T_CLOSE:
                    return s
                raise _ParseError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _T_COMMA:
                if not s:
                    s.add("")
                tok2, _ = self.lookahead()
                if tok2 == _T_CLOSE:
                    s.add("")
                    return s
                if tok2 == _T_COMMA:
                    self.consume()
                    s.add("")
                continue
            raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.lookahead()
        if tok in (_T_EOS, _T_COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _T_ID:
            return {lit}
        raise _ParseError(f"found '{lit}', expected: identifier")


_LABEL_CACHE: dict[str, LabelSelector] = {}


def parse_label_selector(s: str | None) -> LabelSelector:
    """Parse a ``labelSelector`` query value; a syntax error is a 400 with upstream's text."""
    if not s:
        return _EVERYTHING
    sel = _LABEL_CACHE.get(s)
    if sel is not None:
        return sel
    try:
        reqs = _LabelParser(s).parse()
    except _ParseError as e:
        raise errors.bad_request(str(e)) from None
    sel = LabelSelector(reqs) if reqs else _EVERYTHING
    if len(_LABEL_CACHE) > 4096:
        _LABEL_CACHE.clear()
    _LABEL_CACHE[s] = sel
    return sel


_DICT_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def label_selector_from_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector (``matchLabels``/``matchExpressions``) as a selector.

    As upstream's LabelSelectorAsSelector: ``None`` selects nothing, ``{}`` selects
    everything. An invalid selector raises a 400 (callers that must not fail, such as
    controllers, can treat it as selecting nothing)."""
    if sel is None:
        return _NOTHING
    match_labels = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []
    if not match_labels and not exprs:
        return _EVERYTHING
    reqs: list[Requirement] = []
    try:
        for k, v in match_labels.items():
            reqs.append(_new_requirement(k, EQUALS, [v if isinstance(v, str) else str(v)]))
        for e in exprs:
            op = _DICT_OPS.get(e.get("operator"))
            if op is None:
                raise _ParseError(f"{go_quote(str(e.get('operator', '')))} is not a valid label "
                                  "selector operator")
            reqs.append(_new_requirement(e.get("key", ""), op, list(e.get("values") or [])))
    except _ParseError as err:
        raise errors.bad_request(str(err)) from None
    return LabelSelector(reqs)


def label_selector_to_string(sel: Mapping[str, Any] | None) -> str:
    """The canonical selector string, as a scale subresource's ``status.selector``."""
    return str(label_selector_from_dict(sel))


def format_label_selector(sel: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: the string, ``<none>`` when empty, ``<error>`` if invalid."""
    try:
        s = label_selector_to_string(sel)
    except errors.APIError:
        return "<error>"
    return s or "<none>"


def format_labels(labels: Mapping[str, str] | None) -> str:
    """labels.FormatLabels: ``k=v`` pairs sorted by key, or ``<none>``."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


# ---------------------------------------------------------------------------
# Field selectors
# ---------------------------------------------------------------------------

Getter = Callable[[dict], str]


def _path_getter(*path: str, default: str = "") -> Getter:
    """A getter that walks dict keys and stringifies the leaf like a fields.Set value."""
    if len(path) == 2:
        a, b = path

        def get2(obj: dict) -> str:
            v = obj.get(a)
            if v.__class__ is dict:
                v = v.get(b)
                if v.__class__ is str:
                    return v
                return _field_str(v, default)
            return default
        return get2

    def get(obj: dict) -> str:
        v: Any = obj
        for p in path:
            if v.__class__ is not dict:
                return default
            v = v.get(p)
        return _field_str(v, default)
    return get


def _field_str(v: Any, default: str = "") -> str:
    if v is None:
        return default
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _pod_ip(obj: dict) -> str:
    status = obj.get("status") or {}
    ips = status.get("podIPs")
    if ips:
        first = ips[0]
        return (first.get("ip") or "") if isinstance(first, dict) else ""
    return status.get("podIP") or ""


def _event_source(obj: dict) -> str:
    src = (obj.get("source") or {}).get("component") or ""
    return src or obj.get("reportingComponent") or ""


_META = {"metadata.name": _path_getter("metadata", "name"),
         "metadata.namespace": _path_getter("metadata", "namespace")}

# (group, kind) -> (field getters, error formatter, {legacy label: canonical label}).
# These mirror the field label conversion functions upstream registers per kind; a kind
# absent here uses the default conversion (metadata.name and metadata.namespace only).
_NOT_SUPPORTED = "field label not supported: {label}".format


def _job_error(label: str) -> str:
    return f"field label {go_quote(label)} not supported for Job"


_KINDS: dict[tuple[str, str], tuple[dict[str, Getter], Callable[..., str], dict[str, str]]] = {
    ("", "Pod"): ({
        **_META,
        "spec.nodeName": _path_getter("spec", "nodeName"),
        "spec.restartPolicy": _path_getter("spec", "restartPolicy"),
        "spec.schedulerName": _path_getter("spec", "schedulerName"),
        "spec.serviceAccountName": _path_getter("spec", "serviceAccountName"),
        "spec.hostNetwork": _path_getter("spec", "hostNetwork", default="false"),
        "status.phase": _path_getter("status", "phase"),
        "status.podIP": _pod_ip,
        # accepted by the conversion but absent from the pod's field set upstream
        "status.podIPs": lambda obj: "",
        "status.nominatedNodeName": _path_getter("status", "nominatedNodeName"),
    }, lambda label: _NOT_SUPPORTED(label=label), {"spec.host": "spec.nodeName"}),
    ("", "Node"): ({
        "metadata.name": _META["metadata.name"],
        "spec.unschedulable": _path_getter("spec", "unschedulable", default="false"),
    }, lambda label: _NOT_SUPPORTED(label=label), {}),
    ("", "ReplicationController"): ({
        **_META, "status.replicas": _path_getter("status", "replicas", default="0"),
    }, lambda label: _NOT_SUPPORTED(label=label), {}),
    ("", "Event"): ({
        **_META,
        "involvedObject.kind": _path_getter("involvedObject", "kind"),
        "involvedObject.namespace": _path_getter("involvedObject", "namespace"),
        "involvedObject.name": _path_getter("involvedObject", "name"),
        "involvedObject.uid": _path_getter("involvedObject", "uid"),
        "involvedObject.apiVersion": _path_getter("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path_getter("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path_getter("involvedObject", "fieldPath"),
        "reason": _path_getter("reason"),
        "reportingComponent": _path_getter("reportingComponent"),
        "source": _event_source,
        "type": _path_getter("type"),
    }, lambda label: _NOT_SUPPORTED(label=label), {}),
    ("", "Namespace"): ({
        "metadata.name": _META["metadata.name"],
        "status.phase": _path_getter("status", "phase"),
    }, lambda label: _NOT_SUPPORTED(label=label), {}),
    ("", "Secret"): ({**_META, "type": _path_getter("type")},
                     lambda label: _NOT_SUPPORTED(label=label), {}),
    ("", "Service"): ({
        **_META,
        "spec.clusterIP": _path_getter("spec", "clusterIP"),
        "spec.type": _path_getter("spec", "type"),
    }, lambda label: _NOT_SUPPORTED(label=label), {}),
    ("batch", "Job"): ({**_META, "status.successful": _path_getter("status", "succeeded",
                                                                   default="0")},
                       _job_error, {}),
    ("certificates.k8s.io", "CertificateSigningRequest"): ({
        **_META, "spec.signerName": _path_getter("spec", "signerName"),
    }, lambda label: _NOT_SUPPORTED(label=label), {}),
}


def _default_error(label: str) -> str:
    return (f"{go_quote(label)} is not a known field selector: only "
            f"\"metadata.name\", \"metadata.namespace\"")


def supported_fields(group: str, kind: str, selectable_fields: Mapping[str, str] | None = None
                     ) -> list[str]:
    """The field labels a field selector may use for this kind (for docs and discovery)."""
    entry = _KINDS.get((group, kind))
    fields = list(entry[0]) if entry else list(_META)
    if selectable_fields:
        fields.extend(f for f in selectable_fields if f not in fields)
    return fields


def _selectable_getter(json_path: str) -> Getter:
    try:
        path = compile_path(json_path)
    except JSONPathError:
        return lambda obj: ""

    def get(obj: dict) -> str:
        found = path.find(obj)
        return _field_str(found[0]) if found else ""
    return get


def escape_field_value(s: str) -> str:
    """fields.EscapeValue: backslash-escape ``\\``, ``,`` and ``=``."""
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_terms(s: str) -> list[str]:
    terms: list[str] = []
    start, in_slash = 0, False
    for i, c in enumerate(s):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape(s: str) -> str:
    if "\\" not in s and "," not in s and "=" not in s:
        return s
    out: list[str] = []
    in_slash = False
    for c in s:
        if in_slash:
            if c not in "\\,=":
                raise _ParseError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c in ",=":
            # upstream formats the rune with %v, i.e. as its code point number
            raise _ParseError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise _ParseError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


class FieldSelector:
    """A parsed, converted field selector: terms are ``(field, negate, value, getter)``."""

    __slots__ = ("terms", "empty")

    def __init__(self, terms: Iterable[tuple[str, bool, str, Getter]] = ()):
        self.terms = tuple(terms)
        self.empty: bool = not self.terms

    def matches(self, obj: dict) -> bool:
        for _field, negate, value, get in self.terms:
            if (get(obj) == value) is negate:
                return False
        return True

    __call__ = matches

    def requirement(self, field: str) -> str | None:
        """The exact value required for ``field`` (an ``=``/``==`` term), else None."""
        for f, negate, value, _ in self.terms:
            if f == field and not negate:
                return value
        return None

    def __str__(self) -> str:
        return ",".join(f"{f}{'!=' if neg else '='}{escape_field_value(v)}"
                        for f, neg, v, _ in self.terms)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"


_EMPTY_FIELDS = FieldSelector()


def parse_field_selector(s: str | None, group: str, kind: str,
                         selectable_fields: Mapping[str, str] | None = None, *,
                         extra_fields: Mapping[str, str] | None = None) -> FieldSelector:
    """Parse a ``fieldSelector`` query value for objects of ``group``/``kind``.

    ``selectable_fields`` (or ``extra_fields``, the same thing) maps extra field labels
    to JSON paths: a CRD version's ``selectableFields``, ``{"spec.color": ".spec.color"}``.
    Syntax errors and fields the kind does not support are 400s with upstream's messages."""
    if not s:
        return _EMPTY_FIELDS
    if extra_fields:
        selectable_fields = {**(selectable_fields or {}), **extra_fields}
    try:
        parsed: list[tuple[str, bool, str]] = []
        for part in sorted(_split_terms(s)):
            if not part:
                continue
            split = _split_term(part)
            if split is None:
                raise _ParseError(f"invalid selector: '{s}'; can't understand '{part}'")
            lhs, op, rhs = split
            parsed.append((lhs, op == "!=", _unescape(rhs)))
        entry = _KINDS.get((group, kind))
        if entry is None:
            getters: Mapping[str, Getter] = _META
            err_fmt: Callable[[str], str] = _default_error
            aliases: Mapping[str, str] = {}
        else:
            getters, err_fmt, aliases = entry
        terms = []
        for field, negate, value in parsed:
            field = aliases.get(field, field)
            get = getters.get(field)
            if get is None and selectable_fields and field in selectable_fields:
                get = _selectable_getter(selectable_fields[field])
            if get is None:
                raise _ParseError(err_fmt(field))
            terms.append((field, negate, value, get))
    except _ParseError as e:
        raise errors.bad_request(str(e)) from None
    return FieldSelector(terms) if terms else _EMPTY_FIELDS

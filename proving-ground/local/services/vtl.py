"""API Gateway's mapping templates on loopback: Velocity (airspeed) with ``$input``, ``$context``, ``$util``.

The local gateway renders the very template files Terraform deploys
(``src/shared/api_gateway/*.vtl``) with the engine LocalStack uses for API
Gateway. The variables are API Gateway's, as its reference for mapping
templates defines them, for the parts a template of this project can use:

* ``$input.body``, ``$input.json(path)`` (the JSONPath's value as compact JSON),
  ``$input.path(path)`` (the value itself), ``$input.params()`` (``path``,
  ``querystring``, ``header`` maps) and ``$input.params(name)`` (looked up in
  that order, ``""`` when absent);
* ``$context``: the request context (``requestId``, ``authorizer.*``,
  ``error.message``/``messageString``/``responseType``/``validationErrorString``, ...);
  a variable that is not set renders as the empty string, as on API Gateway;
* ``$util.escapeJavaScript``, ``$util.base64Encode``/``base64Decode``,
  ``$util.urlEncode``/``urlDecode``, ``$util.parseJson``.

JSONPath is the subset API Gateway templates use: ``$``, ``.name``,
``['name']`` and ``[index]``; anything else is an error, never a silent guess.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import airspeed


def read_template(path: Path) -> str:
    """A template file as Terraform's ``chomp(file(...))`` reads it: without its final newline(s)."""
    return path.read_text(encoding="utf-8").rstrip("\r\n")


class _Unset(dict):
    """A map in which a name that is not set is ``""`` (API Gateway renders unset variables empty).

    It also answers the ``java.util.Map`` methods a template calls (``get``, ``size``,
    ``isEmpty``, ``keySet``, ``containsKey``).
    """

    def __missing__(self, key: str) -> str:
        if hasattr(type(self), key):
            raise KeyError(key)  # a method: the engine calls it
        return ""

    def get(self, key: str, default: Any = "") -> Any:  # type: ignore[override]
        return dict.get(self, key, default)

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:  # noqa: N802 - the Java name
        return not self

    def keySet(self) -> list[str]:  # noqa: N802 - the Java name
        return list(self)

    def containsKey(self, key: str) -> bool:  # noqa: N802 - the Java name
        return key in self


def _lenient(value: Any) -> Any:
    if isinstance(value, dict):
        return _Unset({key: _lenient(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_lenient(item) for item in value]
    return "" if value is None else value


_JSONPATH_STEP = re.compile(r"""\.([A-Za-z_$][\w$-]*)|\[\s*(?:'([^']*)'|"([^"]*)"|(\d+))\s*\]""")


def json_path(document: Any, path: str) -> Any:
    """The value at ``path`` (``$``, ``$.a.b``, ``$['a'][0]``) in ``document``; ``None`` when it is absent.

    Raises:
        ValueError: ``path`` uses JSONPath beyond that subset.
    """
    text = path.strip()
    if not text.startswith("$"):
        raise ValueError(f"JSONPath must start with '$': {path!r}")
    position, value = 1, document
    while position < len(text):
        step = _JSONPATH_STEP.match(text, position)
        if step is None:
            raise ValueError(f"unsupported JSONPath {path!r} (supported: $, .name, ['name'], [index])")
        name = step.group(1) or step.group(2) or step.group(3)
        if step.group(4) is not None:
            index = int(step.group(4))
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(name) if isinstance(value, dict) else None
        position = step.end()
    return value


@dataclass(frozen=True)
class TemplateInput:
    """``$input``: the method request as a template sees it."""

    body: str = ""
    path_parameters: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def _document(self) -> Any:
        # An empty body is an empty object to API Gateway's JSONPath.
        return json.loads(self.body) if self.body.strip() else {}

    def json(self, path: str) -> str:
        """``$input.json(path)``: the value at ``path`` as compact JSON text."""
        return json.dumps(json_path(self._document(), path), separators=(",", ":"), ensure_ascii=False)

    def path(self, path: str) -> Any:
        """``$input.path(path)``: the value at ``path`` (a map, list, string or number)."""
        return _lenient(json_path(self._document(), path))

    def params(self, name: str | None = None) -> Any:
        """``$input.params()`` (every parameter by location) or ``$input.params(name)``."""
        if name is None:
            return _lenient({"path": self.path_parameters, "querystring": self.query, "header": self.headers})
        if name in self.path_parameters:
            return self.path_parameters[name]
        if name in self.query:
            return self.query[name]
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), "")


def escape_javascript(text: str) -> str:
    """``$util.escapeJavaScript``: JavaScript string rules (Apache Commons Lang ``escapeJavaScript``).

    ``'`` becomes ``\\'`` (not valid JSON, as API Gateway's reference warns); control
    characters and everything beyond ASCII become ``\\uXXXX``.
    """
    named = {"\b": "\\b", "\n": "\\n", "\t": "\\t", "\f": "\\f", "\r": "\\r",
             "'": "\\'", '"': '\\"', "\\": "\\\\", "/": "\\/"}
    out = []
    for char in str(text):
        if char in named:
            out.append(named[char])
        elif ord(char) < 32 or ord(char) > 0x7F:
            encoded = char.encode("utf-16-be")  # astral characters as two UTF-16 units, like Java
            out.extend(f"\\u{encoded[i:i + 2].hex().upper()}" for i in range(0, len(encoded), 2))
        else:
            out.append(char)
    return "".join(out)


class TemplateUtil:
    """``$util``."""

    escapeJavaScript = staticmethod(escape_javascript)  # noqa: N815 - the VTL name

    @staticmethod
    def base64Encode(text: str) -> str:  # noqa: N802 - the VTL name
        return base64.b64encode(str(text).encode("utf-8")).decode("ascii")

    @staticmethod
    def base64Decode(text: str) -> str:  # noqa: N802 - the VTL name
        return base64.b64decode(str(text)).decode("utf-8")

    @staticmethod
    def urlEncode(text: str) -> str:  # noqa: N802 - the VTL name
        return quote_plus(str(text), safe="")

    @staticmethod
    def urlDecode(text: str) -> str:  # noqa: N802 - the VTL name
        return unquote_plus(str(text))

    @staticmethod
    def parseJson(text: str) -> Any:  # noqa: N802 - the VTL name
        return _lenient(json.loads(text))


class TemplateError(ValueError):
    """A template failed while rendering (``$input.json`` of a body that is not JSON, a bad JSONPath)."""


class MappingTemplate:
    """One mapping template, parsed once, rendered per request.

    Args:
        text: The template (Velocity).
        name: Where it came from, for error messages.
    """

    def __init__(self, text: str, name: str = "<template>") -> None:
        self.text = text
        self.name = name
        self._template = airspeed.Template(text)

    @classmethod
    def from_file(cls, path: Path) -> MappingTemplate:
        """The template in ``path``, read as Terraform reads it."""
        return cls(read_template(path), path.name)

    def render(self, *, context: dict[str, Any], template_input: TemplateInput | None = None) -> str:
        """The template's output for one request.

        Raises:
            TemplateError: the template failed (the engine's error names the expression).
        """
        namespace = {
            "context": _lenient(context),
            "input": template_input or TemplateInput(),
            "util": TemplateUtil(),
        }
        try:
            return self._template.merge(namespace)
        except airspeed.TemplateExecutionError as error:
            raise TemplateError(f"{self.name}: {error}") from error


def message_string(message: str | None) -> str:
    """``$context.error.messageString``: ``$context.error.message`` as a quoted JSON string (``null`` when unset)."""
    return json.dumps(message)


def parameter_value(expression: str, *, context: dict[str, Any], template_input: TemplateInput) -> str | None:
    """The value of a parameter mapping expression (``request_parameters``, gateway response headers).

    ``'literal'``, ``context.NAME[.NAME]``, ``method.request.header|querystring|path.NAME``;
    ``None`` when the source is not set (API Gateway then sends no such header).

    Raises:
        ValueError: an expression of another kind (a mapping the local gateway cannot apply).
    """
    if len(expression) >= 2 and expression[0] == expression[-1] == "'":
        return expression[1:-1]
    if expression.startswith("context."):
        value: Any = context
        for name in expression.removeprefix("context.").split("."):
            value = value.get(name) if isinstance(value, dict) else None
        return None if value is None or isinstance(value, (dict, list)) else str(value)
    for location in ("header", "querystring", "path"):
        prefix = f"method.request.{location}."
        if expression.startswith(prefix):
            name = expression.removeprefix(prefix)
            if location == "header":
                return next((v for k, v in template_input.headers.items() if k.lower() == name.lower()), None)
            source = template_input.query if location == "querystring" else template_input.path_parameters
            return source.get(name)
    raise ValueError(f"unsupported parameter mapping expression {expression!r}")

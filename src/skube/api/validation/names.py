"""String formats of apimachinery ``pkg/util/validation`` (and ``api/validate/content``).

Each ``is_*`` returns the list of problems (empty when valid) worded as upstream
words them; callers wrap each one in a field error.
"""
from __future__ import annotations

import ipaddress
import re

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                     "or '-', and must start and end with an alphanumeric character")
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric character")
DNS1123_LABEL_US_FMT = "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_US_FMT = DNS1123_LABEL_US_FMT + "(\\." + DNS1123_LABEL_US_FMT + ")*"
DNS1123_SUBDOMAIN_US_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                            "characters, '_', '-' or '.', and must start and end with an alphanumeric "
                            "character")
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                     "start with an alphabetic character, and end with an alphanumeric character")
LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_KEY_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                 "with an alphanumeric character")
LABEL_VALUE_FMT = "(" + LABEL_KEY_FMT + ")?"
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', "
                   "'_' or '.', and must start and end with an alphanumeric character")
CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
C_IDENTIFIER_MSG = ("a valid C identifier must start with alphabetic character or '_', followed by a "
                    "string of alphanumeric characters or '_'")
ENV_VAR_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
ENV_VAR_MSG = ("a valid environment variable name must consist of alphabetic characters, digits, '_', "
               "'-', or '.', and must not start with a digit")
RELAXED_ENV_VAR_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"
PERCENT_FMT = "[0-9]+%"
PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"
HTTP_HEADER_FMT = "[-A-Za-z0-9]+"
HTTP_HEADER_MSG = "a valid HTTP header must consist of alphanumeric characters or '-'"

_dns_label = re.compile(DNS1123_LABEL_FMT)
_dns_subdomain = re.compile(DNS1123_SUBDOMAIN_FMT)
_dns_subdomain_us = re.compile(DNS1123_SUBDOMAIN_US_FMT)
_dns1035 = re.compile(DNS1035_LABEL_FMT)
_label_key = re.compile(LABEL_KEY_FMT)
_label_value = re.compile(LABEL_VALUE_FMT)
_cm_key = re.compile(CONFIG_MAP_KEY_FMT)
_c_ident = re.compile(C_IDENTIFIER_FMT)
_env_var = re.compile(ENV_VAR_FMT)
_percent = re.compile(PERCENT_FMT)
_http_header = re.compile(HTTP_HEADER_FMT)
_port_name_chars = re.compile("[-a-z0-9]+")
_has_letter = re.compile("[a-z]")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Upstream RegexError (including its double space before ``or``)."""
    if not examples:
        return msg + " (regex used for validation is '" + fmt + "')"
    out = msg + " (e.g. "
    for i, ex in enumerate(examples):
        if i:
            out += " or "
        out += "'" + ex + "', "
    return out + "regex used for validation is '" + fmt + "')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


_LABEL_ERR = regex_error(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc")
_SUBDOMAIN_ERR = regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com")
_SUBDOMAIN_US_ERR = regex_error(DNS1123_SUBDOMAIN_US_MSG, DNS1123_SUBDOMAIN_US_FMT, "example.com")
_DNS1035_ERR = regex_error(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123")
_LABEL_KEY_NAME_ERR = "name part " + regex_error(LABEL_KEY_MSG, LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
_LABEL_KEY_SHAPE_ERR = ("a valid label key " + regex_error(LABEL_KEY_MSG, LABEL_KEY_FMT, "MyName", "my.name",
                                                           "123-abc")
                        + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
_LABEL_VALUE_ERR = regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
_CM_KEY_ERR = regex_error(CONFIG_MAP_KEY_MSG, CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name")
_C_IDENT_ERR = regex_error(C_IDENTIFIER_MSG, C_IDENTIFIER_FMT, "my_name", "MY_NAME", "MyName")
_ENV_VAR_ERR = regex_error(ENV_VAR_MSG, ENV_VAR_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")
_PERCENT_ERR = regex_error(PERCENT_MSG, PERCENT_FMT, "1%", "93%")
_HTTP_HEADER_ERR = regex_error(HTTP_HEADER_MSG, HTTP_HEADER_FMT, "X-Header-Name")

_NO_ERRORS: list[str] = []


def is_dns1123_label(value: str) -> list[str]:
    if len(value) <= 63 and _dns_label.fullmatch(value):
        return _NO_ERRORS
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _dns_label.fullmatch(value):
        errs.append("must not contain dots" if _dns_subdomain.fullmatch(value) else _LABEL_ERR)
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    if len(value) <= 253 and _dns_subdomain.fullmatch(value):
        return _NO_ERRORS
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _dns_subdomain.fullmatch(value):
        errs.append(_SUBDOMAIN_ERR)
    return errs


def is_dns1123_subdomain_with_underscore(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _dns_subdomain_us.fullmatch(value):
        errs.append(_SUBDOMAIN_US_ERR)
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _dns1035.fullmatch(value):
        errs.append(_DNS1035_ERR)
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label keys, annotation keys (lower-cased), finalizers, condition types…"""
    parts = value.split("/")
    if len(parts) == 1:
        name = value
        errs = []
    elif len(parts) == 2:
        prefix, name = parts
        errs = []
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [_LABEL_KEY_SHAPE_ERR]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _label_key.fullmatch(name):
        errs.append(_LABEL_KEY_NAME_ERR)
    return errs


def is_label_value(value: str) -> list[str]:
    if len(value) <= 63 and _label_value.fullmatch(value):
        return _NO_ERRORS
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _label_value.fullmatch(value):
        errs.append(_LABEL_VALUE_ERR)
    return errs


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return _NO_ERRORS


def is_config_map_key(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _cm_key.fullmatch(value):
        errs.append(_CM_KEY_ERR)
    errs.extend(_chdir_prefix(value))
    return errs


def is_c_identifier(value: str) -> list[str]:
    return _NO_ERRORS if _c_ident.fullmatch(value) else [_C_IDENT_ERR]


def is_env_var_name(value: str) -> list[str]:
    """The strict (pre-1.34) environment variable name rule."""
    errs = [] if _env_var.fullmatch(value) else [_ENV_VAR_ERR]
    errs.extend(_chdir_prefix(value))
    return errs


def is_relaxed_env_var_name(value: str) -> list[str]:
    """The rule in force since RelaxedEnvironmentVariableValidation went GA (1.34):
    printable ASCII except '='."""
    errs = []
    if not value:
        errs.append("environment variable name must be non-empty")
    for ch in value:
        if ch > "~" or ch < " " or ch == "=":
            errs.append(RELAXED_ENV_VAR_MSG)
            break
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return _NO_ERRORS if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    errs = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not _port_name_chars.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _has_letter.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_percent(value: str) -> list[str]:
    return _NO_ERRORS if _percent.fullmatch(value) else [_PERCENT_ERR]


def is_http_header_name(value: str) -> list[str]:
    return _NO_ERRORS if _http_header.fullmatch(value) else [_HTTP_HEADER_ERR]


def is_path_segment_name(name: str) -> list[str]:
    """Names that must be safe as one URL path segment (RBAC objects)."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    errs = []
    for bad in ("/", "%"):
        if bad in name:
            errs.append(f"may not contain '{bad}'")
    return errs


def parse_ip_sloppy(value: str):
    """Go's netutils.ParseIPSloppy: like net.ParseIP but IPv4 octets may have leading
    zeros (read as decimal). Returns an ipaddress object or None."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        pass
    parts = value.split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() and len(p) <= 3 for p in parts):
        nums = [int(p) for p in parts]
        if all(n <= 255 for n in nums):
            return ipaddress.IPv4Address(".".join(map(str, nums)))
    return None


IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def is_valid_ip(value: str) -> list[str]:
    return _NO_ERRORS if parse_ip_sloppy(value) is not None else [IP_MSG]


def is_valid_cidr(value: str) -> list[str]:
    ip, _, bits = value.partition("/")
    if not bits.isdigit() or parse_ip_sloppy(ip) is None:
        return [CIDR_MSG]
    addr = parse_ip_sloppy(ip)
    if int(bits) > (32 if addr.version == 4 else 128):
        return [CIDR_MSG]
    return _NO_ERRORS


# ---- object name rules (ValidateNameFunc: (name, prefix) -> problems) ---------------------

def _mask_trailing_dash(name: str) -> str:
    # upstream replaces the last two characters by 'a' when a generateName ends in '-'
    return name[:-2] + "a" if name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool = False) -> list[str]:
    return is_path_segment_name(name) if not prefix else [
        m for m in is_path_segment_name(name) if m.startswith("may not contain")]

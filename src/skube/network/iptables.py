"""Running iptables on the host or inside a network namespace: whole-table updates with
``iptables-restore --noflush`` (one atomic call), idempotent jump rules, listing and
removing a family of chains by prefix. Every call takes ``netns`` (a path such as
/var/run/netns/NAME or /proc/PID/ns/net; None for the host's namespace)."""
from __future__ import annotations

import asyncio


class IptablesError(RuntimeError):
    """An iptables command failed; the message carries its stderr."""


def _argv(cmd: list[str], netns: str | None) -> list[str]:
    return (["nsenter", f"--net={netns}", "--"] + cmd) if netns else cmd


async def run(*args: str, netns: str | None = None, stdin: str | None = None,
              check: bool = True, binary: str = "iptables") -> tuple[int, str]:
    """``binary args…`` (waiting for the xtables lock); returns (exit code, stdout)."""
    cmd = [binary, "-w", *args] if binary in ("iptables", "ip6tables") else [binary, *args]
    proc = await asyncio.create_subprocess_exec(
        *_argv(cmd, netns), stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if check and proc.returncode:
        raise IptablesError(f"{' '.join(cmd[:4])}…: {err.decode(errors='replace').strip()}")
    return proc.returncode, out.decode(errors="replace")


async def restore(text: str, *, netns: str | None = None) -> None:
    """Apply ``text`` (iptables-restore format, tables with COMMIT) without flushing other
    chains: each chain declared in ``text`` is replaced whole, atomically per table."""
    await run("-w", "--noflush", netns=netns, stdin=text, binary="iptables-restore")


async def ensure_rule(table: str, chain: str, *rule: str, netns: str | None = None) -> None:
    """Insert ``rule`` at the top of ``chain`` unless an identical rule is there."""
    rc, _ = await run("-t", table, "-C", chain, *rule, netns=netns, check=False)
    if rc:
        await run("-t", table, "-I", chain, "1", *rule, netns=netns)


async def delete_rule(table: str, chain: str, *rule: str, netns: str | None = None) -> None:
    """Remove every copy of ``rule`` from ``chain`` (none present is fine)."""
    while (await run("-t", table, "-D", chain, *rule, netns=netns, check=False))[0] == 0:
        pass


async def chains(table: str, prefix: str, *, netns: str | None = None) -> list[str]:
    """The user chains of ``table`` whose names start with ``prefix``."""
    _, out = await run("-t", table, "-S", netns=netns, check=False)
    return [line.split()[1] for line in out.splitlines()
            if line.startswith("-N ") and line.split()[1].startswith(prefix)]


async def jumps_into(table: str, prefix: str, *, netns: str | None = None) -> list[list[str]]:
    """Rules (as ``[chain, arg…]``) in chains outside ``prefix`` that jump to a ``prefix`` chain."""
    import shlex
    _, out = await run("-t", table, "-S", netns=netns, check=False)
    found = []
    for line in out.splitlines():
        parts = shlex.split(line)
        if len(parts) > 2 and parts[0] == "-A" and not parts[1].startswith(prefix) \
                and "-j" in parts and parts[parts.index("-j") + 1].startswith(prefix):
            found.append(parts[1:])
    return found


async def remove_chains(table: str, prefix: str, *, netns: str | None = None) -> None:
    """Delete every jump into, and then every chain named with, ``prefix`` in ``table``."""
    for rule in await jumps_into(table, prefix, netns=netns):
        await delete_rule(table, rule[0], *rule[1:], netns=netns)
    names = await chains(table, prefix, netns=netns)
    if not names:
        return
    text = f"*{table}\n" + "".join(f":{n} - [0:0]\n" for n in names) + \
        "".join(f"-X {n}\n" for n in names) + "COMMIT\n"
    await restore(text, netns=netns)

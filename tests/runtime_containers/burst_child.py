"""A throw-away skube runtime for the crash test: creates the pods of a JSON file as one burst
and keeps running until it is killed (``python burst_child.py <data_dir> <base_rootfs>
<cidr> <bridge> <net_name> <pods.json>``)."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rtc_helpers import Env  # noqa: E402
from skube.runtime.sandbox import NetworkConfig  # noqa: E402


async def main() -> None:
    data, base, cidr, bridge, name, pods = sys.argv[1:7]
    env = Env(Path(data), NetworkConfig(cidr=cidr, bridge=bridge, name=name), Path(base), set())
    mgr = env.manager()
    await mgr.start()
    for p in json.loads(Path(pods).read_text()):
        await mgr.create(p)
    print("created", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())

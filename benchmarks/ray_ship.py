"""What does shipping a model to a Ray node cost? `ray.put` on the driver, then the first `ray.get` on another node.

    python benchmarks/ray_ship.py [--sizes-mb 0.13 1.6 67]

`upscale dir --engine ray` puts a user's model (an .onnx, a converted .pth, a --strength blend) in Ray's object store
once; each node fetches it once, on its first file. This starts a head (no CPUs; the driver's node) and one worker
node, each a raylet with its own object store (Ray's multi-node test cluster: the transfer goes through Ray's object
manager over loopback TCP, not a real network), and times, per size: the driver's `ray.put`, and a task on the worker
node that `ray.get`s the bytes (the first get, which pulls them across, then a second, which finds them there).
Default sizes: `fast-x2` (133 KiB), `repsr-x4` (1.6 MiB), Real-ESRGAN x4plus (67 MB).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import ray
from ray.cluster_utils import Cluster


@ray.remote(num_cpus=1)
def fetch(boxed: list) -> tuple[float, float]:
    """Seconds of the first and of a second `ray.get` of the object inside ``boxed`` (passed in a list, so that
    Ray hands the task the reference, not the value)."""
    start = time.perf_counter()
    data = ray.get(boxed[0])
    first = time.perf_counter() - start
    start = time.perf_counter()
    ray.get(boxed[0])
    assert len(data) > 0
    return first, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[0.133, 1.6, 67.0])
    args = parser.parse_args()
    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    rows = [{"cluster_start_s": round(time.perf_counter() - started, 2)}]
    ray.get(fetch.remote([ray.put(b"warm-up")]))  # the worker process itself starts here, not in the timings
    for size in args.sizes_mb:
        data = np.random.default_rng(0).bytes(int(size * 1e6))
        start = time.perf_counter()
        ref = ray.put(data)
        put = time.perf_counter() - start
        first, again = ray.get(fetch.remote([ref]))
        rows.append({"mb": size, "put_s": round(put, 4), "first_get_on_node_s": round(first, 4),
                     "second_get_s": round(again, 5)})
    ray.shutdown()
    cluster.shutdown()
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

"""The two small exhaustive searches whose rows are pinned in ``tests/data`` (one
definition, used by the tests and to write the files).

Only the public API, so the same file computes the rows with an older checkout:
``PYTHONPATH=<checkout> python tests/reference/golden_searches.py paper|megatron OUT.json``
(tests/data/README.md names the commits).
"""

from __future__ import annotations

import json
import sys

import numpy as np

import phaze
from phaze import GIB, Cluster, Workload, preset

#: Eight architectures, no area band.
SPACE = dict(
    num_tc=(2, 8),
    num_vc=(2, 8),
    tc_width=(64, 128),
    tc_depth=(128,),
    vc_width=(128,),
    glb_bytes=(2**25,),
    area_band=0.0,
)


def _rows(workload, cluster, hbm_sizes, **kw) -> dict:
    r = phaze.search(
        workload,
        cluster,
        phaze.DesignSpace(**SPACE),
        micro_batch_sizes=(2, 8),
        hbm_sizes=hbm_sizes,
        recompute=(False, True),
        strategy="exhaustive",
        **kw,
    )
    return {k: np.asarray(v).tolist() for k, v in r.rows.items()}


def paper_rows() -> dict:
    """``{model: {column: values}}``: bert-large with SGD and gpt2-xl with Adam, 128
    tokens, batch 256, 16 devices, the paper's default accounting."""
    out = {}
    for name, opt in (("bert-large", "sgd"), ("gpt2-xl", "adam")):
        w = Workload(preset(name), seq_len=128, global_batch=256, optimizer=opt)
        out[name] = _rows(w, Cluster(devices=16), (1 * GIB, 4 * GIB))
    return out


def megatron_rows(**options) -> dict:
    """``{recompute_mode: {column: values}}``: gpt2-xl with Adam under Megatron's
    accounting (and ``options`` of :class:`phaze.Training`), 16 ``a100-selene`` devices."""
    net = phaze.load_system("a100-selene").network
    out = {}
    for mode in ("full", "selective"):
        w = Workload(preset("gpt2-xl"), seq_len=128, global_batch=256, optimizer="adam")
        training = phaze.Training("megatron", mode, **options)
        out[mode] = _rows(
            w, Cluster(devices=16, network=net), (2 * GIB, 4 * GIB), training=training
        )
    return out


if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    rows = {"paper": paper_rows, "megatron": megatron_rows}[kind]()
    with open(path, "w") as f:
        json.dump(rows, f, indent=None, separators=(",", ":"))

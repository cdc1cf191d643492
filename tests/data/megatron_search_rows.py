"""Rows of a small search under Megatron's accounting, to pin them across changes."""

import json
import sys

import numpy as np

import phaze
from phaze import GIB, Cluster, Training, Workload, preset

space = phaze.DesignSpace(
    num_tc=(2, 8),
    num_vc=(2, 8),
    tc_width=(64, 128),
    tc_depth=(128,),
    vc_width=(128,),
    glb_bytes=(2**25,),
    area_band=0.0,
)
net = phaze.load_system("a100-selene").network
out = {}
for mode in ("full", "selective"):
    w = Workload(preset("gpt2-xl"), seq_len=128, global_batch=256, optimizer="adam")
    r = phaze.search(
        w,
        Cluster(devices=16, network=net),
        space,
        micro_batch_sizes=(2, 8),
        hbm_sizes=(2 * GIB, 4 * GIB),
        recompute=(False, True),
        strategy="exhaustive",
        training=Training("megatron", mode),
    )
    out[mode] = {k: np.asarray(v).tolist() for k, v in r.rows.items()}
with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=None, separators=(",", ":"))

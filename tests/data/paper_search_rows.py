"""Rows of a small paper-setting search, to pin the default results across changes."""

import json
import sys

import numpy as np

import phaze
from phaze import GIB, Cluster, Workload, preset

space = phaze.DesignSpace(
    num_tc=(2, 8),
    num_vc=(2, 8),
    tc_width=(64, 128),
    tc_depth=(128,),
    vc_width=(128,),
    glb_bytes=(2**25,),
    area_band=0.0,
)
out = {}
for name, opt in (("bert-large", "sgd"), ("gpt2-xl", "adam")):
    w = Workload(preset(name), seq_len=128, global_batch=256, optimizer=opt)
    r = phaze.search(
        w,
        Cluster(devices=16),
        space,
        micro_batch_sizes=(2, 8),
        hbm_sizes=(1 * GIB, 4 * GIB),
        recompute=(False, True),
        strategy="exhaustive",
    )
    rows = {k: np.asarray(v).tolist() for k, v in r.rows.items()}
    out[name] = rows
json.dump(out, open(sys.argv[1], "w"), indent=None)

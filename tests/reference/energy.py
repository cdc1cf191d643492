"""Slow, obvious reference of operator energy, written from the formula in docs/energy.md.

One operator, one architecture, one mode and pass: MACs of the GEMMs (backward: input and
weight gradients), each word across a boundary charged one access on each side, vector
work counted as its cycles on a single lane, and the bits a ring all-reduce sends per
device. The word counts come from the latency table (the tiling the latency model chose).
"""

from __future__ import annotations

from reference import vector as ref_vector

__all__ = ["op_energy", "sram_access_j"]


def sram_access_j(e_ref: float, ref_bytes: float, exponent: float, size_bytes: float) -> float:
    return e_ref * (size_bytes / ref_bytes) ** exponent


def op_energy(latency, model, op: int, arch: int, mode: int, pss: int) -> float:
    ops = latency.op_table
    archs = latency.arch_table
    kind = int(ops.kind[op])
    e = 0.0
    if kind in (0, 1):  # TC, TC_VC
        macs = int(ops.gemm_b[op]) * int(ops.gemm_m[op]) * int(ops.gemm_k[op])
        macs *= int(ops.gemm_n[op])
        e += macs * (1 if pss == 0 else 2) * model.mac_j
    parts = [
        (int(ops.vc_code[j]), int(ops.vc_elems[j]), int(ops.vc_aux[j]))
        for j in range(int(ops.vc_ptr[op]), int(ops.vc_ptr[op + 1]))
    ]
    for code, elems, aux in parts:
        e += ref_vector.part_cycles(code, elems, aux, 1, pss) * model.vector_op_j
    if kind == 3 and int(ops.comm_pass[op]) == pss:  # COMM in its own pass
        t = int(ops.comm_group[op])
        e += 2 * (t - 1) / t * int(ops.comm_bytes[op]) * 8 * model.network_j_per_bit
    a = archs.accelerator(arch)
    e_core = sram_access_j(
        model.core_sram_access_j,
        model.core_sram_ref_bytes,
        model.sram_size_exponent,
        a.tc_sram_bytes,
    )
    e_vsram = sram_access_j(
        model.core_sram_access_j,
        model.core_sram_ref_bytes,
        model.sram_size_exponent,
        a.vc_sram_bytes,
    )
    e_glb = sram_access_j(
        model.glb_access_j, model.glb_ref_bytes, model.sram_size_exponent, a.glb_bytes
    )
    t = int(archs.tc_index[arch])
    v = int(archs.vc_index[arch])
    pe = float(latency.pe_words[op, t, mode, pss])
    sram = float(latency.sram_words[op, t, mode, pss])
    hbm = float(latency.hbm_words[op, t, mode, pss])
    vcw = float(latency.vc_words[op, v, mode, pss])
    if pe:
        e += pe * (e_core + model.register_access_j)
    if sram:
        e += sram * (e_glb + e_core)
    if hbm:
        e += hbm * (model.hbm_access_j + e_glb)
    if vcw:
        e += vcw * (e_glb + e_vsram)
    return e

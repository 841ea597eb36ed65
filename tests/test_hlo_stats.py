"""Collective counting on a hand-written optimized-HLO module."""

from spectrax.training import hlo_stats

# The module header and the reduction both test modules share.
HEADER = """\
HloModule jit_step, entry_computation_layout={(f32[8,128]{1,0})->f32[]}

%add.clone (x.2: f32[], y.1: f32[]) -> f32[] {
  %x.2 = f32[] parameter(0)
  %y.1 = f32[] parameter(1)
  ROOT %add.3 = f32[] add(%x.2, %y.1)
}
"""

HLO = HEADER + """
%inner_body (p.1: (s32[], bf16[64,128])) -> (s32[], bf16[64,128]) {
  %p.1 = (s32[], bf16[64,128]{1,0}) parameter(0)
  %g.1 = bf16[64,128]{1,0} get-tuple-element(%p.1), index=1
  %reduce-scatter.1 = bf16[8,128]{1,0} reduce-scatter(%g.1), channel_id=3, replica_groups=[1,8]<=[8], dimensions={0}, to_apply=%add.clone
  ROOT %t.1 = (s32[], bf16[64,128]{1,0}) tuple(%i.1, %g.1)
}

%inner_cond (p.2: (s32[], bf16[64,128])) -> pred[] {
  %p.2 = (s32[], bf16[64,128]{1,0}) parameter(0)
  ROOT %lt.1 = pred[] compare(%a, %b), direction=LT
}

%outer_body (p.3: (s32[], bf16[64,128])) -> (s32[], bf16[64,128]) {
  %p.3 = (s32[], bf16[64,128]{1,0}) parameter(0)
  %g.3 = bf16[64,128]{1,0} get-tuple-element(%p.3), index=1
  %all-reduce.2 = bf16[64,128]{1,0} all-reduce(%g.3), channel_id=2, replica_groups=mesh['axis_0'=8] {'axis_0'}, use_global_device_ids=true, to_apply=%add.clone, metadata={op_name="jit(step)/while/body/dot_general"}
  %while.2 = (s32[], bf16[64,128]{1,0}) while(%p.3), condition=%inner_cond, body=%inner_body, backend_config={"known_trip_count":{"n":"2"}}
  %unknown.1 = (s32[], bf16[64,128]{1,0}) while(%p.3), condition=%inner_cond, body=%inner_body
  ROOT %t.3 = (s32[], bf16[64,128]{1,0}) tuple(%i.3, %g.3)
}

%fused_convert (f.1: bf16[8,128]) -> f32[8,128] {
  %f.1 = bf16[8,128]{1,0} parameter(0)
  %convert.9 = f32[8,128]{1,0} convert(%f.1)
  ROOT %bitcast.9 = f32[8,128]{1,0} bitcast(%convert.9)
}

%branch_a (q.1: f32[4]) -> f32[4] {
  %q.1 = f32[4]{0} parameter(0)
  ROOT %collective-permute.1 = f32[4]{0} collective-permute(%q.1), channel_id=5, source_target_pairs={{0,1},{1,0}}
}

%branch_b (q.2: f32[4]) -> f32[4] {
  %q.2 = f32[4]{0} parameter(0)
  ROOT %all-to-all.1 = f32[4]{0} all-to-all(%q.2), channel_id=6, replica_groups={{0,1}}, dimensions={0}
}

ENTRY %main.5_spmd (param.5: f32[8,128], param.6: s32[]) -> f32[] {
  %param.5 = f32[8,128]{1,0} parameter(0), sharding={devices=[8,1]<=[8]}
  %all-gather.1 = f32[64,128]{1,0} all-gather(%param.5), channel_id=1, replica_groups=mesh['axis_0'=8] {'axis_0'}, dimensions={0}, use_global_device_ids=true
  %all-gather-start.1 = (f32[8,128]{1,0}, f32[64,128]{1,0}) all-gather-start(%param.5), channel_id=7, replica_groups={{0,1,2,3,4,5,6,7}}, dimensions={0}
  %all-gather-done.1 = f32[64,128]{1,0} all-gather-done(%all-gather-start.1)
  %narrow.1 = bf16[8,128]{1,0} convert(%param.5)
  %widen.1 = f32[8,128]{1,0} fusion(%narrow.1), kind=kLoop, calls=%fused_convert
  %all-gather.2 = f32[64,128]{1,0} all-gather(%widen.1), channel_id=8, replica_groups={{0,1,2,3,4,5,6,7}}, dimensions={0}
  %while.1 = (s32[], bf16[64,128]{1,0}) while(%tuple.1), condition=%inner_cond, body=%outer_body, metadata={op_name="jit(step)/while"}, backend_config={"known_induction_variable":{"tuple_index":"0"},"known_trip_count":{"n":"3"}}
  %conditional.1 = f32[4]{0} conditional(%param.6, %x, %y), branch_computations={%branch_a, %branch_b}
  ROOT %r = f32[] constant(0)
}
"""


def test_collectives_are_counted_per_run_through_loops_and_branches():
  ops, unknown = hlo_stats.collectives(HLO)
  by_name = {o.name: o for o in ops}
  # The inner loop without a trip count is walked once and reported.
  assert unknown == 1
  assert by_name["all-gather.1"].executions == 1
  assert by_name["all-gather.1"].arrays == (("f32", (64, 128)),)
  assert by_name["all-gather-start.1"].bytes == 64 * 128 * 4  # the output, not operand + output
  assert by_name["all-reduce.2"].executions == 3
  assert by_name["collective-permute.1"].executions == 1
  summary = hlo_stats.summarize(ops)
  # reduce-scatter: 3 outer x (2 known + 1 unknown) call sites, payload = the operand.
  assert summary["reduce-scatter"] == {"ops": 9, "static_ops": 2, "bytes": 9 * 64 * 128 * 2,
                                       "bytes_by_dtype": {"bf16": 9 * 64 * 128 * 2}}
  # all-gather.2 gathers bfloat16 values widened to float32 (as XLA:CPU does).
  assert by_name["all-gather.2"].upcast and not by_name["all-gather.1"].upcast
  assert by_name["all-gather.2"].arrays == (("bf16", (64, 128)),)
  assert summary["all-gather"]["ops"] == 3
  assert summary["all-gather"]["bytes_by_dtype"] == {"bf16": 64 * 128 * 2, "f32": 2 * 64 * 128 * 4}
  assert summary["all-reduce"]["bytes"] == 3 * 64 * 128 * 2
  assert summary["all-to-all"]["ops"] == 1 and summary["all-to-all"]["bytes"] == 16
  bf16 = hlo_stats.summarize(ops, select=lambda o: o.dtypes == ("bf16",))
  assert bf16["all-gather"]["ops"] == 1 and bf16["all-reduce"]["ops"] == 3
  assert hlo_stats.total_bytes(bf16) == (1 + 3 + 9) * 64 * 128 * 2


# A 2 x 4 mesh (data, fsdp): partition id = 4 * data + fsdp.
MESH_HLO = HEADER + """
%fused_round (f.1: f32[16,8]) -> f32[16,8] {
  %f.1 = f32[16,8]{1,0} parameter(0)
  %convert.1 = bf16[16,8]{1,0} convert(%f.1)
  ROOT %convert.2 = f32[16,8]{1,0} convert(%convert.1)
}

ENTRY %main (p.1: f32[16,8], p.2: f32[8]) -> f32[] {
  %p.1 = f32[16,8]{1,0} parameter(0)
  %p.2 = f32[8]{0} parameter(1)
  %widened.1 = f32[16,8]{1,0} fusion(%p.1), kind=kLoop, calls=%fused_round
  %all-reduce.1 = (f32[16,8]{1,0}, f32[8]{0}) all-reduce(%widened.1, %p.2), channel_id=1, replica_groups=mesh['axis_0'=2,'axis_1'=4] {'axis_1'}, use_global_device_ids=true, to_apply=%add.clone
  %all-reduce.2 = f32[8]{0} all-reduce(%p.2), channel_id=2, replica_groups=mesh['axis_0'=4,'axis_1'=2], device_ids=([2,4]T(1,0)) {'axis_1'}, use_global_device_ids=true, to_apply=%add.clone
  %all-reduce.3 = f32[8]{0} all-reduce(%p.2), channel_id=3, replica_groups=[4,2]<=[2,4]T(1,0), use_global_device_ids=true, to_apply=%add.clone
  %all-gather.1 = f32[32]{0} all-gather(%p.2), channel_id=4, replica_groups={{0,1,2,3},{4,5,6,7}}, dimensions={0}
  %all-reduce.4 = f32[8]{0} all-reduce(%p.2), channel_id=5, replica_groups={}, to_apply=%add.clone
  %collective-permute.1 = f32[8]{0} collective-permute(%p.2), channel_id=6, source_target_pairs={{0,4},{4,0}}
  ROOT %r = f32[] constant(0)
}
"""


def test_combined_collectives_are_narrowed_operand_by_operand():
  ops = {o.name: o for o in hlo_stats.collectives(MESH_HLO)[0]}
  # The matrix was rounded to bfloat16 and widened for XLA:CPU; the vector is float32.
  combined = ops["all-reduce.1"]
  assert combined.arrays == (("bf16", (16, 8)), ("f32", (8,)))
  assert combined.bytes == 16 * 8 * 2 + 8 * 4 and combined.upcast
  assert not ops["all-reduce.2"].upcast


def test_device_groups_name_the_mesh_axes_they_cross():
  ops = {o.name: o for o in hlo_stats.collectives(MESH_HLO)[0]}
  mesh = {"data": 2, "fsdp": 4, "tensor": 1}
  assert ops["all-reduce.1"].groups == ((0, 1, 2, 3), (4, 5, 6, 7))
  # Device ids [2,4]T(1,0) laid out as a 4 x 2 mesh: its axis_1 runs across data.
  assert ops["all-reduce.2"].groups == ((0, 4), (1, 5), (2, 6), (3, 7))
  assert ops["all-reduce.3"].groups == ((0, 4), (1, 5), (2, 6), (3, 7))
  assert ops["all-gather.1"].groups == ((0, 1, 2, 3), (4, 5, 6, 7))
  assert ops["collective-permute.1"].groups == ((0, 4), (4, 0))
  axes = {name: hlo_stats.mesh_axes(op, mesh) for name, op in ops.items()}
  assert axes == {"all-reduce.1": ("fsdp",), "all-reduce.2": ("data",),
                  "all-reduce.3": ("data",), "all-gather.1": ("fsdp",),
                  "all-reduce.4": ("data", "fsdp"), "collective-permute.1": ("data",)}

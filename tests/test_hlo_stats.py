"""Collective counting on a hand-written optimized-HLO module."""

from spectrax.training import hlo_stats

HLO = """\
HloModule jit_step, entry_computation_layout={(f32[8,128]{1,0})->f32[]}

%add.clone (x.2: f32[], y.1: f32[]) -> f32[] {
  %x.2 = f32[] parameter(0)
  %y.1 = f32[] parameter(1)
  ROOT %add.3 = f32[] add(%x.2, %y.1)
}

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

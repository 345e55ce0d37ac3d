"""bench.step_profile: the ops of a real profiled step, and how the report sums them."""

from absl import flags

from bench import frameworks, step_profile
from tests import tiny


def test_importing_it_defines_no_flags_beside_another_bench_module():
  # bench.frameworks defines --steps at import; this module's --steps exists only when run.
  assert frameworks.__name__ and 'steps' in flags.FLAGS and 'top' not in flags.FLAGS


def test_op_times_sum_each_op_over_its_runs_and_leave_the_runtime_out():
  events = [
    {'ph': 'X', 'name': 'ynn_fusion.3', 'dur': 2_000_000},
    {'ph': 'X', 'name': 'ynn_fusion.3', 'dur': 1_000_000},  # the same op on another device
    {'ph': 'X', 'name': 'ynn_fusion.12', 'dur': 500_000},
    {'ph': 'X', 'name': 'multiply_add_fusion', 'dur': 250_000},
    {'ph': 'X', 'name': 'ThunkExecutor::Execute', 'dur': 9_000_000},
    {'ph': 'X', 'name': '$steps.py:64 run_steps', 'dur': 9_000_000},
    {'ph': 'X', 'name': 'Wait: pending_threads=1/2', 'dur': 400_000},
    {'ph': 'X', 'name': 'Rendezvous', 'dur': 400_000},
    {'ph': 'i', 'name': 'dot.1'},  # an instant, no duration
  ]
  times = step_profile.op_times(events)
  assert times == {'ynn_fusion.3': 3.0, 'ynn_fusion.12': 0.5, 'multiply_add_fusion': 0.25}
  assert step_profile.by_kind(times) == [('ynn_fusion', 3.5, 2), ('multiply_add_fusion', 0.25, 1)]


def test_a_profiled_step_lists_its_matrix_multiplications():
  config = tiny.lm(steps=2)
  config.train.steps_per_call = 1  # not the cpu size's 50: one traced step is enough
  result = step_profile.profile(config)
  assert result['seconds'] > 0 and result['ops']
  kinds = {kind for kind, _, _ in step_profile.by_kind(result['ops'])}
  assert kinds & {'dot', 'ynn_fusion'}, kinds  # the matmuls, under either CPU backend
  lines = step_profile.report(result, top=5)
  assert lines[0].endswith('x the wall time') and len(lines) == 1 + 1 + 2 + 5 + 1 + 2 + 5

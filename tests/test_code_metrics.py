"""parse_rate's pieces: held-out headers, where a completion's function ends, parsing."""

import inspect
import json.decoder

from genjax.evaluation import code_metrics


def test_function_headers_are_dedented_def_lines_drawn_with_a_seed():
  source = inspect.getsource(json.decoder)
  headers = code_metrics.function_headers([source], 5, seed=0)
  assert len(headers) == 5
  assert all(h.startswith('def ') and h.rstrip().endswith(':') for h in headers)
  assert code_metrics.function_headers([source], 5, seed=0) == headers
  assert code_metrics.function_headers([source], 5, seed=1) != headers
  assert code_metrics.function_headers(['def broken(:\n'], 5) == []  # unparsable file


def test_the_body_ends_where_indentation_drops():
  completion = (
    '        x = [1,\n        2]\n\n        return x\n    def next_method(self):\n        pass\n'
  )
  body = code_metrics.cut_completion(completion, finished=True)
  assert body == '        x = [1,\n        2]\n\n        return x\n'
  assert code_metrics.parses('def f(a):\n', body)


def test_a_line_cut_by_the_length_limit_is_dropped():
  body = code_metrics.cut_completion('    y = 1\n    return (y,', finished=False)
  assert body == '    y = 1\n' and code_metrics.parses('def f():\n', body)
  assert not code_metrics.parses('def f():\n', '    return (1,\n')


def test_parse_rate_counts_parsable_completions():
  headers = ['def f():\n', 'def g(x):\n']
  good = code_metrics.parse_rate(headers, lambda h: ('    return 1\n', True))
  bad = code_metrics.parse_rate(headers, lambda h: ('return 1\n', True))  # not indented
  assert good == {'parse_rate': 1.0, 'parse_headers': 2.0}
  assert bad['parse_rate'] == 0.0

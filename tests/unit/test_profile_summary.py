"""bench.profile_summary: a py-spy raw profile, summarised per process role."""

from bench.profile_summary import render, summarise

BENCH = 'process 1:"python -m bench";Thread.run (threading.py:1010);_app (local/stack.py:120)'
WORKER = 'process 2:"python -m local.lambda_worker 7";main (local/lambda_worker.py:60)'
RAW = [
    f"{BENCH};query (moto/dynamodb/responses.py:900) 6\n",
    f"{BENCH} 2\n",
    f"{WORKER};encrypt (payments/crypto.py:80) 2\n",
    "not a profile line\n",
]


def test_samples_are_counted_per_role_and_function_whatever_the_line():
    roles = summarise(RAW)

    stack = roles["the stack's process (moto, interpreter, sandbox, bench clients)"]
    workers = roles["Lambda workers (local.lambda_worker)"]
    assert (stack.samples, workers.samples) == (8, 2)
    assert stack.cumulative["_app (local/stack.py)"] == 8
    assert stack.own["query (moto/dynamodb/responses.py)"] == 6
    assert workers.own["encrypt (payments/crypto.py)"] == 2


def test_the_summary_names_each_role_with_its_share_and_its_top_functions():
    text = render(summarise(RAW), top=4)

    assert "the stack's process (moto, interpreter, sandbox, bench clients): 8 samples, 80% of all" in text
    assert "Lambda workers (local.lambda_worker): 2 samples, 20% of all" in text
    assert "100.0%  _app (local/stack.py)" in text
    assert " 75.0%  query (moto/dynamodb/responses.py)" in text

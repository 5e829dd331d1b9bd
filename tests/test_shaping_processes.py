import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autothink_lite.rewards import PAPER_STAGES
from autothink_lite.trainer import shape_rollouts

sys.path.insert(0, str(Path(__file__).parent / "workers"))
from shaping_worker import fixed_batch  # noqa: E402

WORKER = Path(__file__).parent / "workers" / "shaping_worker.py"


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The fixed batch split over 2 CPU processes (torchrun, gloo), shaped by the trainer's code in each."""
    out = tmp_path_factory.mktemp("torchrun") / "two.json"
    # --standalone: torchrun's own rendezvous on a port the OS picks, so two runs (or a leftover process)
    # never race for a fixed port.
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300, capture_output=True, text=True,
    )
    assert done.returncode == 0, (
        f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n"  # a worker's own message comes first,
        f"{done.stderr[:3000]}\n...\n{done.stderr[-2000:]}")  # torchrun's summary last
    return json.loads(out.read_text())


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_post_gather_shaping_is_the_same_on_one_process_and_on_two(two_processes, stage):
    _, single = shape_rollouts(fixed_batch(), PAPER_STAGES[stage], group_size=4)
    if stage == 1:
        assert single.balance_weight == pytest.approx(1 / 3), "the batch is 2/3 think, so the balance acts"
    assert [r["world"] for r in two_processes] == [2, 2]
    for rank in two_processes:
        got = rank[str(stage)]
        assert got["uid"] == fixed_batch()["uid"], "every process sees the whole batch in sampler order"
        assert got["balance_weight"] == pytest.approx(single.balance_weight)
        assert got["rewards"] == pytest.approx(single.rewards)

"""Run under `torchrun --nproc_per_node N`: each process shapes its shard of a fixed rollout batch through
the trainer's own gather + shaping code; rank 0 writes what it got. Used by test_training.py."""

import json
import sys

from accelerate.utils import gather_object

from autothink_lite.rewards import PAPER_STAGES
from autothink_lite.trainer import distributed_state, shape_rollouts


def fixed_batch(num_prompts: int = 6, group_size: int = 4) -> dict[str, list]:
    """A stage-1 batch with 2 of every 3 samples thinking, so the balance acts (w = 1/3)."""
    n = num_prompts * group_size
    return {
        "think": [i % 3 != 0 for i in range(n)],
        "correct": [i % 5 in (0, 1, 3) for i in range(n)],
        "length": [10 + (7 * i) % 23 for i in range(n)],
        "degenerate": [i == 5 for i in range(n)],
        "uid": [f"p{i // group_size}" for i in range(n)],
    }


def main(out_path: str) -> None:
    state = distributed_state()
    full = fixed_batch()
    size = len(full["uid"]) // state.num_processes
    shard = {k: v[state.process_index * size:(state.process_index + 1) * size] for k, v in full.items()}
    result = {"rank": state.process_index, "world": state.num_processes}
    for stage in PAPER_STAGES:
        batch, shaped = shape_rollouts(shard, PAPER_STAGES[stage], group_size=4)
        result[stage] = {"uid": batch["uid"], "rewards": shaped.rewards, "balance_weight": shaped.balance_weight}
    results = gather_object([result])
    if state.is_main_process:
        with open(out_path, "w") as f:
            json.dump(results, f)
    # Exiting with the gloo group alive aborts now and then in its threads after the work is done
    # ("terminate called without an active exception", SIGABRT): end it the way the CLI does.
    state.wait_for_everyone()
    state.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])

"""The multi-task loss against a hand computation on a fixed batch (full logits, plain CE)."""

from __future__ import annotations

import math

import pytest


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir, torch_one_thread):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()


def _batch(torch):
    gen = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, 500, (3, 7), generator=gen)
    loss_mask = torch.tensor([[0, 0, 1, 1, 1, 0, 0],
                              [0, 0, 0, 1, 1, 1, 1],
                              [0, 1, 0, 0, 0, 0, 1]])
    task_ids = torch.tensor([0, 1, 0])
    return input_ids, loss_mask, task_ids


def _hand_task_means(model, torch, input_ids, loss_mask, task_ids):
    logits = model(input_ids=input_ids).logits
    per_task = {}
    for row in range(input_ids.shape[0]):
        for t in range(1, input_ids.shape[1]):
            if loss_mask[row, t]:
                ce = torch.nn.functional.cross_entropy(logits[row, t - 1][None], input_ids[row, t][None]).item()
                per_task.setdefault(int(task_ids[row]), []).append(ce)
    return {task: sum(v) / len(v) for task, v in per_task.items()}


def test_case3_equals_hand_computation(tiny_model, torch_one_thread):
    from mft_hpc.train.loss import combine_tasks, supervised_token_losses, task_sums

    torch = torch_one_thread
    input_ids, loss_mask, task_ids = _batch(torch)
    with torch.no_grad():
        losses, rows = supervised_token_losses(tiny_model, {"input_ids": input_ids}, input_ids, loss_mask)
        sums, counts = task_sums(losses, rows, task_ids, num_tasks=3)  # task 2 absent from the batch
        case3 = combine_tasks(sums, counts).item()
        weighted = combine_tasks(sums, counts, torch.tensor([3.0, 1.0, 5.0])).item()
        means = _hand_task_means(tiny_model, torch, input_ids, loss_mask, task_ids)
    assert counts.tolist() == [5.0, 4.0, 0.0]
    assert case3 == pytest.approx((means[0] + means[1]) / 2, rel=1e-5)
    # each present task counts equally, whatever its token count: not the global token mean
    assert case3 != pytest.approx(losses.mean().item(), rel=1e-4)
    assert weighted == pytest.approx((3 * means[0] + means[1]) / 4, rel=1e-5)


def test_task_without_supervised_tokens_is_left_out_and_empty_batch_is_nan(tiny_model, torch_one_thread):
    from mft_hpc.train.loss import combine_tasks, supervised_token_losses, task_sums

    torch = torch_one_thread
    input_ids, loss_mask, task_ids = _batch(torch)
    loss_mask[1] = 0  # task 1 present in the batch but with nothing to learn: the original's NaN
    with torch.no_grad():
        losses, rows = supervised_token_losses(tiny_model, {"input_ids": input_ids}, input_ids, loss_mask)
        sums, counts = task_sums(losses, rows, task_ids, num_tasks=2)
        means = _hand_task_means(tiny_model, torch, input_ids, loss_mask, task_ids)
        assert combine_tasks(sums, counts).item() == pytest.approx(means[0], rel=1e-5)
        empty = torch.zeros_like(loss_mask)
        losses, rows = supervised_token_losses(tiny_model, {"input_ids": input_ids}, input_ids, empty)
        assert math.isnan(combine_tasks(*task_sums(losses, rows, task_ids, num_tasks=2)).item())


def test_schedule_warmup_cosine_floor():
    from mft_hpc.train.schedule import lr_at

    lrs = [lr_at(s, peak=1.0, min_lr=0.1, warmup=4, total=20) for s in range(25)]
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # cosine never rises after warmup
    assert lrs[20] == pytest.approx(0.1) and min(lrs) >= 0.1 - 1e-12


def test_coba_uniform_until_history_then_favours_the_slow_task():
    from mft_hpc.train.coba import coba_weights

    assert coba_weights([[1.0, 1.0], [0.9, 0.8]], window=3, temperature=5.0) == [1.0, 1.0]
    # task 0 has stopped improving, task 1 still falls fast: task 0 gets the larger weight
    history = [[1.0, 1.0], [0.95, 0.8], [0.94, 0.6], [0.94, 0.45], [0.94, 0.35]]
    weights = coba_weights(history, window=3, temperature=5.0)
    assert weights[0] > weights[1] and sum(weights) == pytest.approx(2.0)

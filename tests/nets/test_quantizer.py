import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from parti_exp.nets.quantizer import USAGE_DECAY, FactorizedQuantizer


def signed_basis_quantizer(dead_code_threshold: float = 0.0) -> FactorizedQuantizer:
    """dim = code_dim = 4 with an identity down-projection and the 8 codes +-e_i (code 2i = +e_i, 2i+1 = -e_i),
    so which code a vector picks can be worked out by hand."""
    q = FactorizedQuantizer(4, 8, code_dim=4, dead_code_threshold=dead_code_threshold)
    with torch.no_grad():
        q.project_in.weight.copy_(torch.eye(4))
        q.project_in.bias.zero_()
        q.codebook.copy_(torch.cat([torch.eye(4), -torch.eye(4)], dim=1).view(8, 4))
    return q


def as_feature_map(vectors: torch.Tensor) -> torch.Tensor:
    """N x C vectors -> 1 x C x 1 x N feature map."""
    return vectors.t().reshape(1, vectors.shape[1], 1, -1)


def test_indices_decode_to_the_quantized_features():
    torch.manual_seed(0)
    q = FactorizedQuantizer(16, 32, code_dim=4)
    out = q(torch.randn(2, 16, 3, 5))
    assert out.indices.shape == (2, 3, 5) and out.indices.dtype == torch.int64
    assert out.quantized.shape == (2, 16, 3, 5)
    torch.testing.assert_close(q.indices_to_features(out.indices), out.quantized, rtol=0, atol=1e-6)
    # Different codes must give different features: the round trip is not trivially constant.
    assert len(out.indices.unique()) > 1


def test_lookup_picks_the_max_cosine_code():
    torch.manual_seed(1)
    q = FactorizedQuantizer(12, 64, code_dim=8)
    z = torch.randn(3, 12, 4, 4)
    out = q(z)
    low = F.linear(z.permute(0, 2, 3, 1).reshape(-1, 12), q.project_in.weight, q.project_in.bias)
    cosine = torch.tensor([[F.cosine_similarity(v, c, dim=0).item() for c in q.codebook] for v in low])
    torch.testing.assert_close(out.indices.flatten(), cosine.argmax(dim=1), rtol=0, atol=0)
    # And the winner beats every other code (no ties in random data).
    chosen = cosine.gather(1, out.indices.view(-1, 1))
    assert (chosen >= cosine).all()


def test_straight_through_gradient_is_that_of_skipping_the_lookup():
    torch.manual_seed(2)
    q = FactorizedQuantizer(6, 16, code_dim=3)
    z = torch.randn(2, 6, 3, 3, requires_grad=True)
    weights = torch.randn(2, 6, 3, 3)
    (q(z).quantized * weights).sum().backward()
    grad = z.grad.clone()
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # The reconstruction path does not train the codebook: only the commitment loss moves codes.
    assert q.codebook.grad is None or not q.codebook.grad.any()

    z.grad = None
    flat = z.permute(0, 2, 3, 1).reshape(-1, 6)
    identity = q.project_out(F.normalize(q.project_in(flat), dim=1)).view(2, 3, 3, 6).permute(0, 3, 1, 2)
    (identity * weights).sum().backward()
    torch.testing.assert_close(grad, z.grad)


def test_commit_loss_moves_the_codes_and_the_encoder():
    torch.manual_seed(3)
    q = FactorizedQuantizer(6, 16, code_dim=3)
    z = torch.randn(2, 6, 3, 3, requires_grad=True)
    q(z).commit_loss.backward()
    assert q.codebook.grad.abs().sum() > 0 and z.grad.abs().sum() > 0


def test_commit_loss_matches_a_hand_computation():
    q = FactorizedQuantizer(2, 2, code_dim=2, beta=0.25)
    with torch.no_grad():
        q.project_in.weight.copy_(torch.eye(2))
        q.project_in.bias.zero_()
        q.codebook.copy_(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))  # unit codes (1, 0) and (0, 1) once normalised
    out = q(as_feature_map(torch.tensor([[3.0, 1.0], [1.0, 2.0]])))
    assert out.indices.flatten().tolist() == [0, 1]
    # (3, 1)/sqrt(10) snaps to (1, 0); (1, 2)/sqrt(5) snaps to (0, 1). Both terms have the same value.
    squared = (3 / math.sqrt(10) - 1) ** 2 + 1 / 10 + 1 / 5 + (2 / math.sqrt(5) - 1) ** 2
    assert out.commit_loss.item() == pytest.approx(1.25 * squared / 4, rel=1e-5)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_perplexity_of_k_equally_used_codes_is_k(k):
    q = signed_basis_quantizer()
    codes = F.normalize(q.codebook.detach(), dim=1)
    # Each of the first k codes, 5 times, slightly perturbed and scaled: still nearest to its own code.
    vectors = (codes[:k].repeat(5, 1) + 0.1 * torch.rand(5 * k, 4)) * 3
    out = q(as_feature_map(vectors))
    assert sorted(out.indices.unique().tolist()) == list(range(k))
    assert out.perplexity.item() == pytest.approx(k, rel=1e-5)
    assert out.usage.item() == pytest.approx(k / 8)


def test_perplexity_of_an_uneven_histogram():
    q = signed_basis_quantizer()
    codes = F.normalize(q.codebook.detach(), dim=1)
    out = q(as_feature_map(torch.cat([codes[:1].repeat(3, 1), codes[1:2]])))  # histogram 3/4, 1/4
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert out.perplexity.item() == pytest.approx(expected, rel=1e-5)


def test_usage_average_is_a_checkpointed_moving_average_of_training_counts():
    q = signed_basis_quantizer()
    codes = F.normalize(q.codebook.detach(), dim=1)
    first = torch.tensor([2.0, 1, 0, 0, 0, 0, 0, 0])
    q(as_feature_map(codes[[0, 0, 1]]))
    torch.testing.assert_close(q.code_usage, first)  # the first forward sets it directly
    q(as_feature_map(codes[[2, 2, 2]]))
    second = torch.tensor([0.0, 0, 3, 0, 0, 0, 0, 0])
    torch.testing.assert_close(q.code_usage, USAGE_DECAY * first + (1 - USAGE_DECAY) * second)
    q.eval()
    before = q.code_usage.clone()
    q(as_feature_map(codes[[5, 6, 7]]))
    torch.testing.assert_close(q.code_usage, before)  # evaluation does not count
    assert "code_usage" in q.state_dict()


def test_dead_codes_are_replaced_by_recent_encoder_vectors_and_used_codes_kept():
    torch.manual_seed(4)
    q = signed_basis_quantizer(dead_code_threshold=0.5)
    codes = F.normalize(q.codebook.detach(), dim=1)
    vectors = codes[[0, 0, 1, 2, 2, 2]] + 0.2 * torch.rand(6, 4)
    q(as_feature_map(vectors))
    before = q.codebook.detach().clone()
    recent = F.normalize(vectors, dim=1)

    assert q.reinit_dead_codes() == 5
    after = q.codebook.detach()
    torch.testing.assert_close(after[:3], before[:3], rtol=0, atol=0)
    for row in after[3:]:
        assert torch.isclose(recent, row, atol=1e-6).all(dim=1).any(), "a new code must be a recent vector"
    # 5 dead codes from 6 recent vectors: all distinct.
    assert len(torch.unique(after[3:], dim=0)) == 5
    # Replaced codes restart at the mean usage (6 vectors / 8 codes), used codes keep theirs.
    torch.testing.assert_close(q.code_usage, torch.tensor([2.0, 1, 3] + [6 / 8] * 5))
    assert q.reinit_dead_codes() == 0


def test_threshold_zero_never_replaces_codes():
    q = signed_basis_quantizer()
    q(as_feature_map(torch.eye(4)[:1]))
    before = q.codebook.detach().clone()
    assert q.reinit_dead_codes() == 0
    torch.testing.assert_close(q.codebook.detach(), before, rtol=0, atol=0)


def test_lookup_runs_in_float32_under_autocast():
    torch.manual_seed(5)
    q = FactorizedQuantizer(16, 128, code_dim=8)
    z = torch.randn(2, 16, 4, 4)
    reference = q(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(z.bfloat16())
    assert out.quantized.dtype == torch.float32
    # bf16 input rounding may flip a near tie, not more.
    assert (out.indices == reference.indices).float().mean() > 0.9


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"codebook_size": 1}, "codebook_size"),
        ({"code_dim": 0}, "code_dim"),
        ({"beta": -0.1}, "beta"),
        ({"dead_code_threshold": -1.0}, "dead_code_threshold"),
        ({"dim": 0}, "dim"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    args = {"dim": 8, "codebook_size": 16} | kwargs
    with pytest.raises(ValueError, match=match):
        FactorizedQuantizer(**args)


def reinit_on_two_ranks(rank: int, init_file: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # same initial codebook on both ranks
        q = signed_basis_quantizer(dead_code_threshold=0.5)
        codes = F.normalize(q.codebook.detach(), dim=1)
        # Rank 0 uses codes 0 and 1, rank 1 codes 2 and 3: averaged over ranks only codes 4-7 are dead.
        torch.manual_seed(100 + rank)  # different batches and random picks per rank
        used = [0, 1] if rank == 0 else [2, 3]
        q(as_feature_map(codes[used * 2] + 0.2 * torch.rand(4, 4)))
        replaced = q.reinit_dead_codes()
        torch.save(
            {"replaced": replaced, "codebook": q.codebook.detach(), "usage": q.code_usage, "recent": q._recent_vectors},
            f"{results}{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_distributed_ranks_replace_the_same_codes_with_rank_zeros_vectors(tmp_path):
    mp.spawn(reinit_on_two_ranks, args=(str(tmp_path / "init"), str(tmp_path / "rank")), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{i}.pt") for i in range(2))
    assert r0["replaced"] == r1["replaced"] == 4
    torch.testing.assert_close(r0["codebook"], r1["codebook"], rtol=0, atol=0)
    torch.testing.assert_close(r0["usage"], r1["usage"], rtol=0, atol=0)
    torch.testing.assert_close(r0["usage"][:4], torch.ones(4))  # each rank's 2 uses, averaged over 2 ranks
    for row in r0["codebook"][4:]:
        assert torch.isclose(r0["recent"], row, atol=1e-6).all(dim=1).any()

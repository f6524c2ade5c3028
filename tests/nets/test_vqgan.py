import pytest
import torch
import torch.nn.functional as F

from parti_exp.nets.patchgan import PatchDiscriminator
from parti_exp.nets.vqgan import VQGANAutoencoder


@pytest.mark.parametrize("img_size", [16, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_output_range(img_size, channels):
    torch.manual_seed(0)
    ae = VQGANAutoencoder(img_size=img_size, channels=channels, width=8, codebook_size=32)
    d = PatchDiscriminator(img_size=img_size, channels=channels, width=8)
    images = torch.rand(3, channels, img_size, img_size) * 2 - 1
    recon, q = ae(images)
    assert recon.shape == images.shape
    assert recon.min() >= -1 and recon.max() <= 1
    grid = (img_size // 4, img_size // 4)
    assert ae.token_grid == grid
    assert q.indices.shape == (3, *grid) and q.quantized.shape == (3, 32, *grid)
    assert ae.encode(images).shape == (3, *grid)
    assert ae.decode(q.indices).shape == images.shape
    logits = d(recon)
    # Two stride-2 convs, then two stride-1 4x4 convs that each take a pixel off.
    side = img_size // 4 - 2
    assert logits.shape == (3, 1, side, side)


def test_32_px_with_two_downsamples_is_64_tokens():
    ae = VQGANAutoencoder(img_size=32, channels=1, width=8, downsamples=2, codebook_size=16)
    assert ae.token_grid == (8, 8) and ae.codebook_size == 16
    assert ae.quantizer.codebook_size == 16
    assert VQGANAutoencoder(img_size=32, width=8, downsamples=3).token_grid == (4, 4)


def test_decoding_the_tokens_reproduces_the_forward_reconstruction():
    torch.manual_seed(1)
    ae = VQGANAutoencoder(img_size=16, channels=3, width=8, codebook_size=32).eval()
    images = torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        recon, q = ae(images)
        tokens = ae.encode(images)
        torch.testing.assert_close(tokens, q.indices, rtol=0, atol=0)
        torch.testing.assert_close(ae.decode(tokens), recon, rtol=0, atol=1e-6)
        # Another image's tokens decode to something else: decode really reads the tokens.
        assert not torch.allclose(ae.decode(tokens.roll(1, dims=0)), recon)


@pytest.mark.parametrize("img_size,downsamples", [(30, 2), (16, 5), (4, 3)])
def test_image_size_must_be_divisible_by_the_downsampling(img_size, downsamples):
    with pytest.raises(ValueError, match=r"data\.img_size.*model\.generator\.downsamples"):
        VQGANAutoencoder(img_size=img_size, downsamples=downsamples)


def smooth_images(n: int, size: int) -> torch.Tensor:
    """Random low-frequency images in [-1, 1]: learnable by a small autoencoder in a few steps."""
    coarse = torch.randn(n, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    return torch.tanh(2 * F.interpolate(coarse, size=size, mode="bilinear", align_corners=False))


def test_a_few_adam_steps_reduce_the_reconstruction_error():
    torch.manual_seed(3)
    ae = VQGANAutoencoder(img_size=16, channels=1, width=16, codebook_size=64, code_dim=8)
    images = smooth_images(8, 16)
    optimizer = torch.optim.Adam(ae.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        recon, q = ae(images)
        l1 = (recon - images).abs().mean()
        losses.append(l1.item())
        optimizer.zero_grad()
        (l1 + q.commit_loss).backward()
        optimizer.step()
    assert losses[-1] < 0.5 * losses[0], losses

import itertools

import pytest
import torch

from inpaintlib import Attention, DenoiserUNet, ModelConfig, ResBlock, SinusoidalEmbeddings, count_parameters


@pytest.mark.parametrize("self_cond,coord_conv,cond,pred",
                         list(itertools.product([False, True], [False, True], ["none", "mask"], ["eps", "x0", "v"])))
def test_unet_output_shape_for_every_option(self_cond, coord_conv, cond, pred):
    cfg = ModelConfig(self_cond=self_cond, coord_conv=coord_conv, cond=cond, pred=pred, base_channels=16)
    net = DenoiserUNet(cfg)
    x = torch.randn(2, 1, 28, 28)
    hole = torch.zeros(2, 1, 28, 28)
    out = net(x, torch.tensor([0, 399]), x0_prev=x if self_cond else None, y=x, hole=hole)
    assert out.shape == (2, 1, 28, 28)
    assert cfg.in_channels == 1 + self_cond + 2 * coord_conv + 2 * (cond == "mask")
    assert net.conv_in.in_channels == cfg.in_channels


def test_conditioning_inputs_change_the_output():
    torch.manual_seed(0)
    net = DenoiserUNet(ModelConfig(self_cond=True, cond="mask", base_channels=16))
    for p in net.parameters():  # the zero-initialised output layers would hide every input
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(1, 1, 28, 28), torch.tensor([10])
    hole = torch.zeros(1, 1, 28, 28)
    base = net(x, t, x0_prev=torch.zeros_like(x), y=torch.zeros_like(x), hole=hole)
    assert not torch.allclose(base, net(x, t, x0_prev=torch.ones_like(x), y=torch.zeros_like(x), hole=hole))
    assert not torch.allclose(base, net(x, t, x0_prev=torch.zeros_like(x), y=torch.ones_like(x), hole=hole))
    assert not torch.allclose(base, net(x, torch.tensor([300]), x0_prev=torch.zeros_like(x), y=torch.zeros_like(x), hole=hole))


def test_mask_model_requires_observation():
    net = DenoiserUNet(ModelConfig(cond="mask", base_channels=16))
    with pytest.raises(ValueError, match="y"):
        net(torch.randn(1, 1, 28, 28), torch.tensor([3]))


def test_default_size_is_lightweight():
    n = count_parameters(DenoiserUNet(ModelConfig()))
    assert 0.5e6 < n < 2e6


def test_config_round_trip_and_validation():
    cfg = ModelConfig(pred="x0", self_cond=True, cond="mask", T=123, schedule="cosine")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="pred"):
        ModelConfig(pred="score")
    with pytest.raises(ValueError, match="cond"):
        ModelConfig(cond="text")
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_blocks():
    emb = SinusoidalEmbeddings(32)(torch.tensor([0, 1, 500]))
    assert emb.shape == (3, 32)
    assert torch.allclose(emb[0], torch.cat([torch.zeros(16), torch.ones(16)]))  # sin(0)=0, cos(0)=1
    assert (emb[1] - emb[2]).abs().max() > 0.5
    block = ResBlock(8, 16, time_dim=12)
    assert block(torch.randn(2, 8, 7, 7), torch.randn(2, 12)).shape == (2, 16, 7, 7)
    x = torch.randn(2, 16, 7, 7)
    att = Attention(16, num_heads=4)
    assert torch.equal(att(x), x)  # zero-initialised projection: identity at init
    with pytest.raises(ValueError, match="num_heads"):
        Attention(10, num_heads=4)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_attention_matches_the_formula_and_feeds_sdpa_unit_stride_rows(monkeypatch, memory_format):
    """out = x + W_o softmax(Q K^T / sqrt(d)) V, head by head, from NCHW and from channels_last input;
    and Q, K, V reach scaled_dot_product_attention with unit stride along d (what its fused CPU and
    CUDA kernels need; without it SDPA takes its unfused path, 5x slower at 64x64 on a CPU)."""
    torch.manual_seed(0)
    att = Attention(16, num_heads=4)
    torch.nn.init.normal_(att.proj.weight)
    x = torch.randn(2, 16, 5, 6).contiguous(memory_format=memory_format)
    att = att.to(memory_format=memory_format)
    strides = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(q, k, v, *args, **kwargs):
        strides.extend(t.stride(-1) for t in (q, k, v))
        return sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    out = att(x)
    assert strides == [1, 1, 1]

    with torch.no_grad():
        qkv = att.qkv(att.norm(x)).float().contiguous()
        expected = torch.empty(2, 16, 30)
        for b in range(2):
            for head in range(4):
                rows = slice(4 * head, 4 * head + 4)
                q, k, v = (qkv[b, part * 16:(part + 1) * 16][rows].reshape(4, 30) for part in range(3))
                weights = torch.softmax(q.T @ k / 2.0, dim=-1)  # (positions, positions), sqrt(d) = 2
                expected[b, rows] = (weights @ v.T).T
        expected = x + att.proj(expected.reshape(2, 16, 5, 6))
    assert torch.allclose(out, expected, atol=1e-5)

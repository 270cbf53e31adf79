"""The LightningModule trains: the loss falls on a fixed batch, spec dropout acts only in training."""
import torch

from utils.training.machinery import build_model


def _batch(seed=0, batch=2):
    g = torch.Generator().manual_seed(seed)
    velocity = torch.zeros(batch, 640, 88)
    for b in range(batch):
        for n in range(12):
            key = int(torch.randint(0, 88, (1,), generator=g))
            start = int(torch.randint(0, 600, (1,), generator=g))
            velocity[b, start:start + 30, key] = float(torch.randint(20, 120, (1,), generator=g)) / 128
    return {"audio": torch.randn(batch, 327680, generator=g) * 0.1, "velocity": velocity, "frame": (velocity > 0).float()}


def test_loss_falls_on_a_fixed_batch(compose):
    torch.manual_seed(0)
    cfg = compose("spec_roll", ["experiment=cpu_small", "model.args.spec_dropout=0"])
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = _batch()
    model.train()

    def mean_loss(n=8):
        with torch.no_grad():
            return sum(model.step(batch)[0].item() for _ in range(n)) / n

    before = mean_loss()
    for _ in range(40):
        loss, _ = model.step(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = mean_loss()
    assert after < 0.6 * before, (before, after)


def test_spec_dropout_sets_whole_items_to_minus_one_in_training_only(compose):
    cfg = compose("spec_roll", ["experiment=cpu_small", "model.args.spec_dropout=1.0"])
    model = build_model(cfg)
    batch = _batch()
    x_t = torch.randn(2, 1, 640, 88)
    t = torch.tensor([3, 7])
    model.train()
    _, spec = model(x_t, batch["audio"], batch["frame"].unsqueeze(1), t)
    assert torch.all(spec == -1)
    model.eval()
    _, spec = model(x_t, batch["audio"], batch["frame"].unsqueeze(1), t)
    assert spec.min() == 0 and spec.max() == 1


def test_configure_optimizers_uses_adam_at_config_rate(compose):
    cfg = compose("spec_roll", ["experiment=cpu_small", "learning_rate=0.0042"])
    optimizer = build_model(cfg).configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["lr"] == 0.0042

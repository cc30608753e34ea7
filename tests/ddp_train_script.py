"""Run by test_reliability.py under torchrun: a few DDP training steps, then each rank dumps its weights."""
import sys
from pathlib import Path

import torch

from inpaintlib import train

out, mnist_root = Path(sys.argv[1]), sys.argv[2]
torch.set_num_threads(1)
result = train(epochs=1, batch_size=8, max_steps=3, sample_every=100, sample_steps=2, steps=20, warmup_steps=1,
               train_subset=64, base_channels=8, out_dir=str(out / "run"), data_root=mnist_root, progress=False)
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else int(__import__("os").environ["RANK"])
(out / "ranks").mkdir(exist_ok=True)
torch.save({"model": result.model.state_dict(), "ema": result.ema_model.state_dict(), "losses": result.losses},
           out / "ranks" / f"rank{rank}.pt")

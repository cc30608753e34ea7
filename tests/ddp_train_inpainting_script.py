"""Run by test_freeform_reliability.py under torchrun: a few DDP steps of train_inpainting, then
each rank dumps its weights and the loss history it logged."""
import os
import sys
from pathlib import Path

import torch

from inpaintlib import train_inpainting

data, out = Path(sys.argv[1]), Path(sys.argv[2])
torch.set_num_threads(1)
result = train_inpainting(data, out / "run" / "model.pt", num_epochs=2, batch_size=2, max_steps=4,
                          image_size=32, preset="tiny", device="cpu", save_every_n_steps=2, progress=False)
rank = int(os.environ["RANK"])
(out / "ranks").mkdir(exist_ok=True)
torch.save({"model": result.model.state_dict(), "ema": result.ema_model.state_dict(), "losses": result.history, "steps_per_epoch": result.steps_per_epoch, "step": result.step},
           out / "ranks" / f"rank{rank}.pt")

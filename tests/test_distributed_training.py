"""Training in two processes (torchrun, gloo on the CPU) follows the single-process trajectory on
the same global batches: the ranks split each batch, gather the embeddings for in-batch negatives
and add up their gradients."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from finetune.distributed import Ranks
from finetune.rundir import iter_jsonl
from finetune.train import run_train_stage
from tests.test_finetune_train import make_run

REPO = Path(__file__).resolve().parents[1]
SCRIPT = """
import json, os, sys
import torch
torch.set_num_threads(1)
from finetune.config import DomainConfig
from finetune.rundir import RunDir
from finetune.train import run_train_stage
config = DomainConfig(**json.loads(sys.argv[1]))
summary = run_train_stage(config, RunDir(config.run_dir), ["t0", "t1"], show_progress=False)
if os.environ["RANK"] == "0":
    print(json.dumps(summary))
"""


def test_shares_cover_every_row_once():
    for world in (1, 2, 3):
        for n in range(8):
            spans = [Ranks(r, world).share(n) for r in range(world)]
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))


def test_two_processes_follow_the_single_process_loss_trajectory(tiny_mistral_dir, tmp_path):
    settings = {"batch_size": 5, "steps": 6, "checkpoint_every": 3, "mixed_steps": 2}
    single_config, single = make_run(tmp_path / "single", str(tiny_mistral_dir), **settings)
    torch.set_num_threads(1)
    run_train_stage(single_config, single, ["t0", "t1"], show_progress=False)

    double_config, double = make_run(tmp_path / "double", str(tiny_mistral_dir), **settings)
    fields = {k: getattr(double_config, k) for k in ("corpus", "run_dir", "base", "steps", "batch_size",
                                                     "mixed_steps", "checkpoint_every", "learning_rate",
                                                     "warmup_steps", "lora_dropout")}
    script = tmp_path / "train_two.py"
    script.write_text(SCRIPT)

    def train_two(run_dir) -> dict:
        got = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                              str(script), json.dumps({**fields, "run_dir": str(run_dir)})],
                             check=False, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        assert got.returncode == 0, got.stderr[-3000:]
        return json.loads(got.stdout.strip().splitlines()[-1])

    summary = train_two(double.root)
    assert summary["processes"] == 2 and summary["resumed_from"] == 0

    def trajectory(run):
        return [(r["step"], r.get("loss"), r.get("probe_loss")) for r in iter_jsonl(run.losses)]

    one, two = trajectory(single), trajectory(double)
    assert [s for s, _, _ in one] == [s for s, _, _ in two] == list(range(7))  # rank 0 alone wrote the log
    for (_, loss_1, probe_1), (_, loss_2, probe_2) in zip(one, two, strict=True):
        assert (loss_1 is None) == (loss_2 is None) and (probe_1 is None) == (probe_2 is None)
        if loss_1 is not None:
            assert loss_2 == pytest.approx(loss_1, rel=1e-4, abs=1e-5)
        if probe_1 is not None:
            assert probe_2 == pytest.approx(probe_1, rel=1e-4, abs=1e-5)
    assert [p.name for p in single.checkpoint_dirs()] == [p.name for p in double.checkpoint_dirs()]
    from safetensors.torch import load_file

    last_1 = load_file(single.checkpoint_dirs()[-1] / "adapter_model.safetensors")
    last_2 = load_file(double.checkpoint_dirs()[-1] / "adapter_model.safetensors")
    assert last_1.keys() == last_2.keys()
    assert max((last_1[k] - last_2[k]).abs().max().item() for k in last_1) < 1e-4

    # killed after the step-3 checkpoint: the two-process rerun resumes there and ends bit-identical
    killed = tmp_path / "killed"
    shutil.copytree(double.root, killed)
    shutil.rmtree(killed / "checkpoints" / "step-000006")
    assert train_two(killed)["resumed_from"] == 3
    resumed = load_file(killed / "checkpoints" / "step-000006" / "adapter_model.safetensors")
    assert all(torch.equal(resumed[k], last_2[k]) for k in last_2)

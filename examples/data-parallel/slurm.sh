#!/bin/bash
# TextCraftor data parallel on a Slurm cluster: one task per GPU, Open MPI wired up through PMIx.
# Submit from the project root after `bash scripts/setup.sh`: sbatch examples/data-parallel/slurm.sh
#SBATCH --job-name=textcraftor
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-task=1
#SBATCH --time=24:00:00
# Global batch = batch-size × grad-accum × tasks = 1 × 8 × 8 = 64 prompts per optimizer step.
# Each task takes the GPU of its local rank (SLURM_LOCALID) among those it sees (only its own where cgroups,
# ConstrainDevices=yes, hide the others). `bun run cli info` on a node lists the adapters; --device N pins one.
srun --mpi=pmix bun run cli train \
  --model ./stable-diffusion-v1-5 --prompts prompts.txt --mixed-precision fp16 \
  --reward aesthetic=3:weights=./aesthetic --reward clip=50:weights=./clip-vit-l-14 \
  --batch-size 1 --grad-accum 8 --run-dir runs/textcraftor-slurm

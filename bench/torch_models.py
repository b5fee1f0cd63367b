#!/usr/bin/env python3
"""PyTorch's side of the whole-model tables (bench/vs-torch.sh; our side: bench/vs-torch-json.ts, the same cases
under the same names), the models being the plain-torch ones the golden fixtures are made with:
  models: SD 1.5's UNet (unet_golden.SD15) at 16×16 latents, batch 1, 77×768 text states, and CLIP ViT-L/14's image
          tower (clip_torch) at 224 px, random weights, forward and forward+backward with the weights frozen and
          the gradient to the text states / the pixels, as our trainer takes it;
  train:  trainer_golden.py's TextCraftor step on its tiny model (N = 4, K = 2, batch 2, brightness reward), then
          AdamW over the text encoder.
f32 on the CPU, on every core and refusing the reference BLAS (torch_env.py). Medians of --samples runs after one
warm-up run (default 1 for the models, whose runs take seconds to minutes on 2 cores; 5 for the step). Writes JSON
to the path given (the table comes from bench/compare-models.ts).
  python3 bench/torch_models.py models|train [out.json] [--samples N] [--tiny] [--only unet|vit] [--threads N]
                                [--allow-reference-blas]
"""
import argparse
import json
import os
import sys
import time

import torch_env  # before torch: it sets OpenMP's wait policy

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../scripts/fixtures"))
import clip_torch  # noqa: E402
import trainer_golden  # noqa: E402
import unet_golden  # noqa: E402
import vae_golden  # noqa: E402

# CLIP ViT-L/14's image tower (packages/cli/src/bench/training.ts VIT_L14).
VIT_L14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=224,
               patch_size=14, num_channels=3, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=768)
FULL = dict(unet=unet_golden.SD15, latent=16, tokens=77, vision=VIT_L14)
# vs-torch.ts TINY_SIZES: the same layouts at tiny widths, for checking the cases run.
TINY = dict(unet=dict(unet_golden.SD15, block_out_channels=[16, 32, 64, 64], norm_num_groups=8, cross_attention_dim=64),
            latent=8, tokens=77, vision=dict(VIT_L14, hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, image_size=56))
TIMESTEP = 500


def model_cases(s):
    """(model, shape, build) per model; build() makes it once for all its passes: (parameters, {pass: run})."""
    text_dim = s["unet"]["cross_attention_dim"]
    side, vision = s["vision"]["image_size"], s["vision"]

    def unet():
        m = unet_golden.UNet(s["unet"]).requires_grad_(False)
        x, states = torch.randn(1, 4, s["latent"], s["latent"]), torch.randn(1, s["tokens"], text_dim)
        t, grad_out = torch.tensor([TIMESTEP]), torch.randn(1, 4, s["latent"], s["latent"])

        def forward():
            with torch.no_grad():
                m(x, t, states)

        def backward():
            leaf = states.detach().requires_grad_(True)
            m(x, t, leaf).backward(grad_out)
        return sum(p.numel() for p in m.parameters()), {"forward": forward, "forward+backward (∂/∂text)": backward}

    def vit():
        p = {}
        clip_torch.vision_params(p, vision)
        clip_torch.linear_params(p, "visual_projection", vision["projection_dim"], vision["hidden_size"], bias=False)
        pixels, grad_out = torch.randn(1, 3, side, side), torch.randn(1, vision["projection_dim"])

        def forward():
            with torch.no_grad():
                clip_torch.vision_forward(p, pixels, vision)

        def backward():
            leaf = pixels.detach().requires_grad_(True)
            clip_torch.vision_forward(p, leaf, vision)[2].backward(grad_out)
        return sum(t.numel() for t in p.values()), {"forward": forward, "forward+backward (∂/∂pixels)": backward}

    return [("unet", f"1×4×{s['latent']}², text 1×{s['tokens']}×{text_dim}", unet),
            ("vit", f"1×3×{side}² → image embeds", vit)]


def step_case():
    def build():
        torch.manual_seed(77)  # the fixture's weights, as trainer_golden.py draws them
        text = trainer_golden.text_params()
        unet = trainer_golden.unet_golden.UNet(trainer_golden.UNET).requires_grad_(False)
        vae = vae_golden.AutoencoderKL(vae_golden.CONFIG).requires_grad_(False)
        trainable = {k: v.clone().requires_grad_(True) for k, v in text.items()}
        noise = torch.randn(2, 4, 8, 8)
        # The trainer's defaults (TRAIN_DEFAULTS): AdamW at lr 1e-6, weight decay 1e-2.
        optimizer = torch.optim.AdamW(trainable.values(), lr=1e-6, weight_decay=1e-2)

        def step():
            _, reward = trainer_golden.training_reward(text, trainable, unet, vae, noise)
            (-reward).backward()
            optimizer.step()
            optimizer.zero_grad()
        return sum(v.numel() for v in trainable.values()), {"train step (N=4, K=2) + AdamW": step}

    return [("tiny sd", "2 × 16², brightness reward", build)]


def median(times):
    return sorted(times)[len(times) // 2]  # as packages/cli/src/bench/timing.ts takes it


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("suite", choices=["models", "train"])
    parser.add_argument("out", nargs="?", help="JSON file to write")
    parser.add_argument("--samples", type=int, help="timed runs after the warm-up; default 1 for models, 5 for train")
    parser.add_argument("--tiny", action="store_true", help="models at tiny widths (checks the cases run)")
    parser.add_argument("--only", choices=["unet", "vit"], help="one model of the models table")
    torch_env.add_arguments(parser)
    args = parser.parse_args()
    samples = args.samples or (1 if args.suite == "models" else 5)
    if samples < 1:
        parser.error(f"--samples {samples}: give a whole number ≥ 1")
    env = torch_env.prepare(args.threads, args.allow_reference_blas)
    print(torch_env.describe(env), file=sys.stderr)
    cases = model_cases(TINY if args.tiny else FULL) if args.suite == "models" else step_case()
    cases = [c for c in cases if args.only in (None, c[0])]
    rows = []
    for model, shape, build in cases:
        params, passes = build()
        for pass_, run in passes.items():
            run()  # warm-up: the allocator's and oneDNN's first-call costs
            times = []
            for _ in range(samples):
                t0 = time.perf_counter()
                run()
                times.append((time.perf_counter() - t0) * 1e3)
            rows.append({"model": model, "pass": pass_, "shape": shape, "params": params / 1e6, "medianMs": median(times), "samples": times})
            print(f"{model} {pass_}: {median(times):.1f} ms", file=sys.stderr)
        del passes
    doc = dict(torch=torch.__version__, device="cpu", suite=args.suite, env=env, rows=rows)
    text = json.dumps(doc, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()

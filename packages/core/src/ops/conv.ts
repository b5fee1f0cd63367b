/** 2-D convolution (implicit GEMM), nearest ×2 upsampling and adaptive average pooling, with gradients. */
import * as K from "@textcraftor/webgpu-kernels";
import { record } from "../tensor/autograd.ts";
import { runtime } from "../tensor/runtime.ts";
import { sameShape } from "../tensor/shape.ts";
import { Tensor } from "../tensor/tensor.ts";

const r = () => runtime().runner;

export interface Conv2dParams {
  stride?: number;
  /** Symmetric padding, or [top, bottom, left, right] (the VAE encoder's downsampler pads (0, 1, 0, 1)). */
  padding?: number | [number, number, number, number];
}

/**
 * torch.nn.functional.conv2d for x [N, Cin, H, W] and w [Cout, Cin, kh, kw] (groups = 1), plus `residual`
 * (the output's shape) added in the kernel's epilogue: a skip connection without a pass of its own.
 */
export function conv2d(
  x: Tensor,
  w: Tensor,
  bias?: Tensor | null,
  p: Conv2dParams = {},
  residual?: Tensor | null,
): Tensor {
  const [batch, inChannels, height, width] = x.shape as [number, number, number, number];
  const [outChannels, cin, kernelH, kernelW] = w.shape as [number, number, number, number];
  if (x.ndim !== 4 || cin !== inChannels)
    throw new Error(`conv2d: input [${x.shape}] does not match weight [${w.shape}] (expected [N, ${cin}, H, W])`);
  const [top, bottom, left, right] =
    typeof p.padding === "object" ? p.padding : [p.padding ?? 0, p.padding ?? 0, p.padding ?? 0, p.padding ?? 0];
  const stride = p.stride ?? 1;
  const shape: K.Conv2dShape = {
    batch,
    inChannels,
    outChannels,
    height,
    width,
    kernelH,
    kernelW,
    strideH: stride,
    strideW: stride,
    padH: top,
    padW: left,
    padBottom: bottom,
    padRight: right,
  };
  const size = K.conv2dOutputSize(shape);
  const outShape = [batch, outChannels, size.height, size.width];
  if (residual && !sameShape(residual.shape, outShape))
    throw new Error(`conv2d: residual [${residual.shape}] != output [${outShape}]`);
  const out = Tensor.empty(outShape);
  K.conv2d(r(), x.buffer, w.buffer, out.buffer, { ...shape, bias: bias?.buffer, residual: residual?.buffer });
  const inputs = [x, w, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  return record(out, "conv2d", inputs, (g) => {
    let gx: Tensor | null = null,
      gw: Tensor | null = null,
      gb: Tensor | null = null;
    if (x.requiresGrad) K.conv2dInputGrad(r(), g.buffer, w.buffer, (gx = Tensor.empty(x.shape)).buffer, shape);
    if (w.requiresGrad) K.conv2dWeightGrad(r(), x.buffer, g.buffer, (gw = Tensor.empty(w.shape)).buffer, shape);
    if (bias?.requiresGrad) K.conv2dBiasGrad(r(), g.buffer, (gb = Tensor.empty(bias.shape)).buffer, shape);
    return [gx, gw, ...(bias ? [gb] : []), ...(residual ? [residual.requiresGrad ? g : null] : [])];
  });
}

/** Nearest-neighbour ×2 upsampling of [N, C, H, W]. */
export function upsampleNearest2x(x: Tensor): Tensor {
  const [batch, channels, height, width] = x.shape as [number, number, number, number];
  const o = { batch, channels, height, width };
  const out = Tensor.empty([batch, channels, height * 2, width * 2]);
  K.upsampleNearest2x(r(), x.buffer, out.buffer, o);
  return record(out, "upsampleNearest2x", [x], (g) => {
    const gx = Tensor.empty(x.shape);
    K.upsampleNearest2xGrad(r(), g.buffer, gx.buffer, o);
    return [gx];
  });
}

/** torch.nn.functional.adaptive_avg_pool2d (TextCraftor pools 512×512 images to 224×224 for the rewards). */
export function adaptiveAvgPool2d(x: Tensor, outH: number, outW = outH): Tensor {
  const [batch, channels, height, width] = x.shape as [number, number, number, number];
  const o = { batch, channels, height, width, outH, outW };
  const out = Tensor.empty([batch, channels, outH, outW]);
  K.adaptiveAvgPool2d(r(), x.buffer, out.buffer, o);
  return record(out, "adaptiveAvgPool2d", [x], (g) => {
    const gx = Tensor.empty(x.shape);
    K.adaptiveAvgPool2dGrad(r(), g.buffer, gx.buffer, o);
    return [gx];
  });
}

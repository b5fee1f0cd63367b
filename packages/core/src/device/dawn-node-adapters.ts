/**
 * dawn.node (`webgpu` on Node) picks an adapter by name: `create(["adapter=NAME"])` takes the first adapter whose
 * name contains NAME, and an adapter name that matches none makes requestAdapter fail with the list of adapters
 * (its README's way to list them). So an index is reachable only when no earlier adapter's name contains that
 * adapter's name: identical GPUs (8 × "NVIDIA H200") cannot be told apart under Node.
 */

export interface DawnNodeAdapter {
  backend: string;
  name: string;
}

/** A name no adapter has, so that requestAdapter answers with the list. */
const NO_ADAPTER = "adapter=textcraftor lists the adapters";

export async function listDawnNodeAdapters(
  create: (flags: string[]) => GPU,
  flags: string[],
): Promise<DawnNodeAdapter[]> {
  let message: string;
  try {
    const adapter = await create([...flags, NO_ADAPTER]).requestAdapter();
    if (adapter) throw new Error(`dawn.node opened an adapter for "${NO_ADAPTER}"`);
    return [];
  } catch (e) {
    message = String((e as Error)?.message ?? e);
  }
  return parseDawnNodeAdapterList(message);
}

export function parseDawnNodeAdapterList(message: string): DawnNodeAdapter[] {
  return [...message.matchAll(/^\s*\* backend: '([^']*)', name: '(.*)'\s*$/gm)].map((m) => ({
    backend: m[1]!,
    name: m[2]!,
  }));
}

/** The `adapter=` flag that reaches `names[index]`, or null when an earlier adapter's name contains its name. */
export function dawnNodeAdapterFlag(names: readonly string[], index: number): string | null {
  const name = names[index]!;
  return names.slice(0, index).some((earlier) => earlier.includes(name)) ? null : `adapter=${name}`;
}

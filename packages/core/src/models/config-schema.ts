/**
 * Model and scheduler configs are checked field by field with one Effect Schema each, so a config.json with a
 * value that would turn into NaN or ∞ later (a string beta, a zero eps, a fractional layer count) is refused
 * while loading, with every problem listed at once: the field, the value it has and what is allowed.
 */
import { Schema, SchemaIssue } from "effect";

const positive = Schema.isGreaterThan(0);

/** An integer ≥ 1 (channel, layer and head counts). */
export const PositiveInt = Schema.Int.pipe(Schema.check(positive));
/** An integer ≥ 0. */
export const NonNegativeInt = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)));
/** A finite number > 0 (epsilons, scales). */
export const PositiveFinite = Schema.Finite.pipe(Schema.check(positive));
/** An integer from 1 to `max`: sizes that would not fit in memory anyway are a typo or an attack. */
export const IntUpTo = (max: number) => Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: max })));

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const formatter = SchemaIssue.makeFormatterStandardSchemaV1();

/** The value at a path of the parsed JSON, for the message. */
function at(json: unknown, path: readonly PropertyKey[]): unknown {
  let v = json;
  for (const key of path)
    v = typeof v === "object" && v !== null ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  return v;
}

const show = (v: unknown) =>
  v === undefined ? "missing" : typeof v === "number" && !Number.isFinite(v) ? String(v) : JSON.stringify(v);
const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/**
 * `json` decoded by `schema`, or a ConfigError naming `where` and listing every problem as
 * `key = value: expected …` (keys the schema does not name pass through unchecked).
 */
export function decodeConfig<S extends Schema.ConstraintDecoder<unknown>>(
  schema: S,
  json: unknown,
  where: string,
): S["Type"] {
  let issue: SchemaIssue.Issue;
  try {
    return Schema.decodeUnknownSync(schema)(json, { errors: "all" });
  } catch (error) {
    if (!Schema.isSchemaError(error)) throw error;
    issue = error.issue;
  }
  const problems = formatter(issue).issues.map(({ path, message }) => {
    const keys = (path ?? []).map((p) => (typeof p === "object" ? p.key : p));
    const name = keys.map((k, i) => (typeof k === "number" ? `[${k}]` : i ? `.${String(k)}` : String(k))).join("");
    return `  ${name || "(config)"} = ${show(at(json, keys))}: ${lowerFirst(message)}`;
  });
  throw invalid(where, problems);
}

const invalid = (where: string, problems: string[]) =>
  new ConfigError(
    `${where}: ${problems.length === 1 ? "a field is" : `${problems.length} fields are`} invalid\n${problems.join("\n")}`,
  );

/**
 * Relations between fields, checked once each field is valid on its own: `[holds, key, value, what is wrong]`;
 * every failing one is listed, in decodeConfig's format.
 */
export function crossCheck(where: string, rules: readonly (readonly [boolean, string, unknown, string])[]): void {
  const problems = rules
    .filter(([holds]) => !holds)
    .map(([, key, value, message]) => `  ${key} = ${show(value)}: ${message}`);
  if (problems.length) throw invalid(where, problems);
}

import type { z } from 'zod';

/**
 * A yes/no validity check compiled from a zod schema, for hot loops (indexing 100,000-line files):
 * zod builds a full copy and an issue list per record, which doubles the cost of a streaming pass.
 * The zod schema stays the single source of truth: this walks its definition and generates one
 * straight-line JS function; any construct it does not know is delegated to `schema.safeParse`.
 * A differential test checks both agree. Callers run zod itself on the (rare) records this
 * rejects, to get the precise issues.
 */
export type FastCheck = (value: unknown) => boolean;

interface CheckDef {
  check: string;
  format?: string;
  value?: number | bigint;
  inclusive?: boolean;
  minimum?: number;
  maximum?: number;
}
interface Def {
  type: string;
  shape?: Record<string, Schema>;
  catchall?: Schema;
  innerType?: Schema;
  element?: Schema;
  options?: Schema[];
  entries?: Record<string, unknown>;
  values?: unknown[];
  checks?: Array<{ _zod: { def: CheckDef } }>;
}
type Schema = { _zod: { def: Def } } & Pick<z.ZodType, 'safeParse'>;

class Compiler {
  readonly functions: string[] = [];
  readonly fallbacks: Schema[] = [];
  private vars = 0;

  private fallback(schema: Schema, x: string): string {
    this.fallbacks.push(schema);
    return `F[${this.fallbacks.length - 1}].safeParse(${x}).success`;
  }

  /** Conditions from zod's checks, or null when one is not understood. */
  private checks(def: Def, x: string): string[] | null {
    const out: string[] = [];
    for (const c of def.checks ?? []) {
      const d = c._zod.def;
      switch (d.check) {
        case 'number_format':
          if (d.format !== 'safeint') return null;
          out.push(`Number.isSafeInteger(${x})`);
          break;
        case 'greater_than':
          out.push(`${x} ${d.inclusive ? '>=' : '>'} ${Number(d.value)}`);
          break;
        case 'less_than':
          out.push(`${x} ${d.inclusive ? '<=' : '<'} ${Number(d.value)}`);
          break;
        case 'min_length':
          out.push(`${x}.length >= ${Number(d.minimum)}`);
          break;
        case 'max_length':
          out.push(`${x}.length <= ${Number(d.maximum)}`);
          break;
        default:
          return null;
      }
    }
    return out;
  }

  /** A boolean JS expression that is true iff variable `x` satisfies `schema`. */
  expr(schema: Schema, x: string): string {
    const def = schema._zod.def;
    switch (def.type) {
      case 'unknown':
      case 'any':
        return 'true';
      case 'never':
        return 'false';
      case 'optional':
        return `(${x} === undefined || ${this.expr(def.innerType as Schema, x)})`;
      case 'nullable':
        return `(${x} === null || ${this.expr(def.innerType as Schema, x)})`;
      case 'boolean':
        return `(typeof ${x} === "boolean")`;
      case 'string': {
        const checks = this.checks(def, x);
        return checks
          ? `(typeof ${x} === "string"${checks.map((c) => ` && ${c}`).join('')})`
          : this.fallback(schema, x);
      }
      case 'number': {
        const checks = this.checks(def, x);
        return checks
          ? `(typeof ${x} === "number" && Number.isFinite(${x})${checks.map((c) => ` && ${c}`).join('')})`
          : this.fallback(schema, x);
      }
      case 'enum':
        return `(${
          Object.values(def.entries ?? {})
            .map((v) => `${x} === ${JSON.stringify(v)}`)
            .join(' || ') || 'false'
        })`;
      case 'literal':
        return `(${(def.values ?? []).map((v) => `${x} === ${JSON.stringify(v)}`).join(' || ') || 'false'})`;
      case 'union':
        return `(${(def.options ?? []).map((o) => this.expr(o, x)).join(' || ')})`;
      case 'array': {
        const checks = this.checks(def, 'a');
        if (!checks) return this.fallback(schema, x);
        const slot = this.functions.length;
        const name = `f${slot}`;
        this.functions.push(''); // reserve the slot before compiling the element (recursion)
        const e = this.fresh();
        this.functions[slot] = `function ${name}(a) {
  if (!Array.isArray(a)${checks.map((c) => ` || !(${c})`).join('')}) return false;
  for (var i = 0; i < a.length; i++) { var ${e} = a[i]; if (!${this.expr(def.element as Schema, e)}) return false; }
  return true;
}`;
        return `${name}(${x})`;
      }
      case 'object': {
        const catchall = def.catchall?._zod.def.type;
        // unknown: extra keys kept (looseObject); undefined: stripped (object); never: rejected (strictObject).
        if (def.checks?.length || (catchall !== undefined && catchall !== 'unknown' && catchall !== 'never'))
          return this.fallback(schema, x);
        const slot = this.functions.length;
        const name = `f${slot}`;
        this.functions.push('');
        const shape = def.shape ?? {};
        const lines: string[] = [];
        for (const key of Object.keys(shape)) {
          const v = this.fresh();
          lines.push(`  var ${v} = o[${JSON.stringify(key)}]; if (!${this.expr(shape[key], v)}) return false;`);
        }
        if (catchall === 'never') {
          lines.push(`  for (var k in o) if (!Object.prototype.hasOwnProperty.call(K${slot}, k)) return false;`);
          this.functions.push(
            `var K${slot} = ${JSON.stringify(Object.fromEntries(Object.keys(shape).map((k) => [k, 1])))};`,
          );
        }
        this.functions[slot] = `function ${name}(o) {
  if (o === null || typeof o !== "object" || Array.isArray(o)) return false;
${lines.join('\n')}
  return true;
}`;
        return `${name}(${x})`;
      }
      default:
        return this.fallback(schema, x);
    }
  }

  private fresh(): string {
    return `v${this.vars++}`;
  }
}

/**
 * The generated source of {@link compileFastCheck}: helper functions, then `return function check(value)`,
 * to run with `F` bound to `fallbacks` (the sub-schemas it could not compile, checked by zod).
 */
export function fastCheckSource(schema: z.ZodType): {
  source: string;
  fallbacks: ReadonlyArray<Pick<z.ZodType, 'safeParse'>>;
} {
  const compiler = new Compiler();
  const root = compiler.expr(schema as unknown as Schema, 'value');
  return {
    source: `${compiler.functions.join('\n')}\nreturn function check(value) { return ${root}; };`,
    fallbacks: compiler.fallbacks,
  };
}

/** Compiles `schema` to a boolean check (generated code; no input data ever reaches the source). */
export function compileFastCheck(schema: z.ZodType): FastCheck {
  const { source, fallbacks } = fastCheckSource(schema);
  return new Function('F', source)(fallbacks) as FastCheck;
}
